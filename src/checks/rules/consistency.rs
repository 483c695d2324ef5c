//! `consistency`: an aggregate of the table against another one
//! ([`Reconcile`], `compare_to`) or the last complete day against the day
//! before ([`DayOverDay`], `day_column`). Both observe the absolute
//! difference; the share is the relative difference.

use super::{Columns, Failing, Measure, Plan, Problem, Rule, Sql};
use crate::checks::spec::{CheckSpec, CompareTo};
use crate::sql;

#[derive(Debug, Clone)]
pub(crate) struct Reconcile {
    /// An aggregate over the checked table, e.g. `sum(revenue)`.
    pub expression: String,
    pub compare_to: CompareTo,
}

#[derive(Debug, Clone)]
pub(crate) struct DayOverDay {
    /// An aggregate per day, e.g. `sum(revenue)`.
    pub expression: String,
    pub day_column: String,
}

pub(super) fn build(s: &CheckSpec) -> Result<Rule, Vec<Problem>> {
    let Some(expression) = s.expression.clone() else {
        return Err(vec![(
            "expression",
            "a consistency check needs `expression`, an aggregate such as `sum(revenue)`".into(),
        )]);
    };
    match (&s.compare_to, &s.day_column) {
        (Some(compare_to), None) => Ok(Rule::Reconcile(Reconcile {
            expression,
            compare_to: compare_to.clone(),
        })),
        (None, Some(day_column)) => Ok(Rule::DayOverDay(DayOverDay {
            expression,
            day_column: day_column.clone(),
        })),
        _ => Err(vec![(
            "kind",
            "a consistency check needs `compare_to` (reconciliation) or `day_column` (day over day), one of them"
                .into(),
        )]),
    }
}

/// `3.00 (8.00%)`: a difference and, when known, its share of the baseline.
fn difference(observed: f64, pct: Option<f64>) -> String {
    match pct {
        Some(pct) => format!("{observed:.2} ({pct:.2}%)"),
        None => format!("{observed:.2}"),
    }
}

impl Measure for Reconcile {
    /// The expression names its own columns.
    fn columns(&self) -> Vec<&str> {
        Vec::new()
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        vec![(&self.compare_to.table, Vec::new())]
    }

    fn plan(&self, s: &Sql, _: &Columns) -> Plan {
        let other = &self.compare_to;
        // Subtracted as the aggregates are (exact for decimals and integers),
        // then made floating point: casting first would lose cents above
        // 2^53 minor units and report a difference that is not there.
        let a = format!(
            "coalesce((SELECT {} FROM {} WHERE {}), 0)",
            s.expand(&self.expression),
            s.table,
            s.scope
        );
        let b = format!(
            "coalesce((SELECT {} FROM {} WHERE {}), 0)",
            s.expand(&other.expression),
            super::table_ref(&other.table),
            s.condition(other.filter.as_deref())
        );
        Plan::Query {
            sql: format!(
                "SELECT CAST(abs(a - b) AS DOUBLE), CAST(abs(b) AS DOUBLE) FROM (SELECT {a} AS a, {b} AS b)"
            ),
            values: 2,
        }
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Nothing
    }

    fn reads(&self, observed: f64, pct: Option<f64>) -> String {
        difference(observed, pct)
    }

    fn counts_failing_rows(&self) -> bool {
        false
    }
}

impl Measure for DayOverDay {
    fn columns(&self) -> Vec<&str> {
        vec![&self.day_column]
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    /// The last complete day (before `as_of`'s day) against the one before it.
    fn plan(&self, s: &Sql, _: &Columns) -> Plan {
        let day = sql::ident(&self.day_column);
        let as_of_day = format!("CAST({} AS DATE)", sql::timestamp(s.as_of));
        Plan::Query {
            sql: format!(
                "WITH d AS (SELECT CAST({day} AS DATE) AS day, {} AS v FROM {} WHERE {} GROUP BY 1), \
                 p AS (SELECT coalesce((SELECT v FROM d WHERE day = {as_of_day} - 1), 0) AS last, \
                              coalesce((SELECT v FROM d WHERE day = {as_of_day} - 2), 0) AS prev) \
                 SELECT CAST(abs(last - prev) AS DOUBLE), CAST(abs(prev) AS DOUBLE) FROM p",
                s.expand(&self.expression),
                s.table,
                s.scope
            ),
            values: 2,
        }
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Nothing
    }

    fn reads(&self, observed: f64, pct: Option<f64>) -> String {
        difference(observed, pct)
    }

    fn counts_failing_rows(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules::test_support::{spec, sql};

    #[test]
    fn reconciles_two_aggregates_in_one_query() {
        let Rule::Reconcile(rule) = build(&spec(
            "kind: consistency, expression: sum(revenue), compare_to: {table: staging.events, expression: sum(amount), filter: 'event_time <= {as_of}'}, fail: '> 0.01'",
        ))
        .unwrap() else {
            panic!("compare_to reconciles")
        };
        assert_eq!(rule.other_tables(), vec![("staging.events", vec![])]);
        assert_eq!(
            rule.plan(&sql(None), &Columns::new()),
            Plan::Query {
                sql: "SELECT CAST(abs(a - b) AS DOUBLE), CAST(abs(b) AS DOUBLE) FROM (SELECT coalesce((SELECT sum(revenue) FROM \"staging\".\"events\" WHERE TRUE), 0) AS a, coalesce((SELECT sum(amount) FROM \"staging\".\"events\" WHERE (event_time <= TIMESTAMP '2026-11-20 12:00:00.000000')), 0) AS b)".into(),
                values: 2
            }
        );
        assert_eq!(rule.reads(3.0, Some(8.0)), "3.00 (8.00%)");
    }

    #[test]
    fn day_over_day_compares_the_two_complete_days_before_as_of() {
        let Rule::DayOverDay(rule) = build(&spec(
            "kind: consistency, expression: sum(revenue), day_column: day, warn: '> 50%'",
        ))
        .unwrap() else {
            panic!("day_column is day over day")
        };
        let Plan::Query { sql: text, values: 2 } = rule.plan(&sql(None), &Columns::new()) else {
            panic!("one query of two values")
        };
        assert!(
            text.contains("day = CAST(TIMESTAMP '2026-11-20 12:00:00.000000' AS DATE) - 1"),
            "{text}"
        );
        assert_eq!(rule.columns(), ["day"]);
    }

    #[test]
    fn needs_an_expression_and_one_comparison() {
        assert_eq!(
            build(&spec("kind: consistency, day_column: d, fail: '> 1'")).unwrap_err()[0].0,
            "expression"
        );
        assert_eq!(
            build(&spec("kind: consistency, expression: sum(x), fail: '> 1'")).unwrap_err()[0].0,
            "kind"
        );
    }
}
