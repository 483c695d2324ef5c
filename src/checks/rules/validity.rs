//! `validity`: rows failing tests of a column (`accepted_values`, `regex`,
//! `min`, `max`) and/or a `predicate`. Rows where the column is null are
//! not judged (completeness does that); the share is of the judged rows.

use super::{Columns, Failing, Measure, Plan, Problem, Sql, count_with_share, non_null};
use crate::checks::spec::CheckSpec;
use crate::sql;

#[derive(Debug, Clone)]
pub(crate) enum Validity {
    /// Non-null values of `column` pass every test and the predicate.
    Column {
        column: String,
        tests: Vec<ColumnTest>,
        predicate: Option<String>,
    },
    /// Every row meets the predicate.
    Rows { predicate: String },
}

/// A test of one column's value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ColumnTest {
    /// One of these, compared as text.
    AcceptedValues(Vec<String>),
    /// A regular expression the whole value matches.
    Regex(String),
    Min(f64),
    Max(f64),
}

pub(super) fn build(s: &CheckSpec) -> Result<Validity, Vec<Problem>> {
    let mut tests = Vec::new();
    if let Some(values) = &s.accepted_values {
        tests.push(ColumnTest::AcceptedValues(values.clone()));
    }
    if let Some(re) = &s.regex {
        tests.push(ColumnTest::Regex(re.clone()));
    }
    tests.extend(s.min.map(ColumnTest::Min));
    tests.extend(s.max.map(ColumnTest::Max));
    match (&s.column, tests.is_empty(), &s.predicate) {
        (_, true, None) => Err(vec![(
            "kind",
            "a validity check needs `accepted_values`, `regex`, `min`/`max` or `predicate`".into(),
        )]),
        (Some(column), ..) => Ok(Validity::Column {
            column: column.clone(),
            tests,
            predicate: s.predicate.clone(),
        }),
        (None, true, Some(predicate)) => Ok(Validity::Rows {
            predicate: predicate.clone(),
        }),
        (None, false, _) => Err(vec![(
            "column",
            "a validity check needs `column` for `accepted_values`, `regex`, `min` and `max`".into(),
        )]),
    }
}

impl Validity {
    /// The rows that are judged: those where the column is not null.
    fn judged(&self) -> String {
        match self {
            Validity::Column { column, .. } => non_null(std::slice::from_ref(column)),
            Validity::Rows { .. } => non_null(&[]),
        }
    }

    /// A judged row that fails.
    fn invalid(&self, s: &Sql) -> String {
        let mut rules = Vec::new();
        let predicate = match self {
            Validity::Column {
                column,
                tests,
                predicate,
            } => {
                let col = sql::ident(column);
                for test in tests {
                    rules.push(match test {
                        ColumnTest::AcceptedValues(values) => {
                            let list: Vec<String> = values.iter().map(|v| sql::string(v)).collect();
                            format!("CAST({col} AS VARCHAR) IN ({})", list.join(", "))
                        }
                        ColumnTest::Regex(re) => {
                            format!("regexp_full_match(CAST({col} AS VARCHAR), {})", sql::string(re))
                        }
                        ColumnTest::Min(min) => format!("{col} >= {min}"),
                        ColumnTest::Max(max) => format!("{col} <= {max}"),
                    });
                }
                predicate.as_deref()
            }
            Validity::Rows { predicate } => Some(predicate.as_str()),
        };
        if let Some(p) = predicate {
            rules.push(format!("({})", s.expand(p)));
        }
        format!("({} AND NOT ({}))", self.judged(), rules.join(" AND "))
    }
}

impl Measure for Validity {
    fn columns(&self) -> Vec<&str> {
        match self {
            Validity::Column { column, .. } => vec![column],
            Validity::Rows { .. } => Vec::new(),
        }
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    fn plan(&self, sql: &Sql, _: &Columns) -> Plan {
        Plan::Aggregates(vec![
            sql.count_where(&self.invalid(sql)),
            sql.count_where(&self.judged()),
        ])
    }

    fn failing(&self, sql: &Sql) -> Failing {
        Failing::Rows {
            condition: self.invalid(sql),
            qualify: None,
        }
    }

    fn reads(&self, observed: f64, pct: Option<f64>) -> String {
        count_with_share(observed, pct)
    }

    fn counts_failing_rows(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules::test_support::{spec, sql};

    fn invalid(fields: &str) -> String {
        build(&spec(fields)).unwrap().invalid(&sql(None))
    }

    #[test]
    fn every_test_of_the_column_and_the_predicate_must_hold() {
        assert_eq!(
            invalid("kind: validity, column: region, accepted_values: [us, \"it's\"], fail: '> 0'"),
            "(\"region\" IS NOT NULL AND NOT (CAST(\"region\" AS VARCHAR) IN ('us', 'it''s')))"
        );
        assert_eq!(
            invalid("kind: validity, column: amount, min: 0, max: 1.5, regex: '[0-9]+', fail: '> 0'"),
            "(\"amount\" IS NOT NULL AND NOT (regexp_full_match(CAST(\"amount\" AS VARCHAR), '[0-9]+') AND \"amount\" >= 0 AND \"amount\" <= 1.5))"
        );
        assert_eq!(
            invalid("kind: validity, column: t, predicate: 't > {window_start}', fail: '> 0'"),
            "(\"t\" IS NOT NULL AND NOT ((t > TIMESTAMP '2026-10-21 12:00:00.000000')))"
        );
        assert_eq!(
            invalid("kind: validity, predicate: 'amount < 100', fail: '> 0'"),
            "(TRUE AND NOT ((amount < 100)))"
        );
    }

    #[test]
    fn the_share_is_of_the_judged_rows() {
        let rule = build(&spec("kind: validity, column: sku, regex: '[a-e]', fail: '> 1'")).unwrap();
        let Plan::Aggregates(exprs) = rule.plan(&sql(None), &Columns::new()) else {
            panic!("validity is fused")
        };
        assert_eq!(
            exprs[1],
            "CAST(count(*) FILTER (WHERE TRUE AND \"sku\" IS NOT NULL) AS DOUBLE)"
        );
        assert_eq!(rule.reads(1.0, Some(12.5)), "1 (12.50%)");
    }

    #[test]
    fn column_tests_need_a_column_and_something_to_test() {
        let nothing = build(&spec("kind: validity, column: x, fail: '> 0'")).unwrap_err();
        assert_eq!(nothing[0].0, "kind");
        let no_column = build(&spec("kind: validity, min: 0, fail: '> 0'")).unwrap_err();
        assert_eq!(no_column[0].0, "column");
    }
}
