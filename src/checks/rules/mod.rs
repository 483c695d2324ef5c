//! Check rules: a closed enum, one variant per kind of check, each carrying
//! only its own fields (validated once, when the checks load) and owning its
//! SQL, its failing-row query and how its observed value reads.
//!
//! A new kind is a variant here, a file beside this one implementing
//! [`Measure`] (no method has a default, so the compiler lists every decision
//! it must make), its fields in [`super::spec`], and its builder arm in
//! [`build`]. There is no registry: `match` arms without wildcards are the
//! list.

mod completeness;
mod consistency;
mod custom;
mod freshness;
mod relationships;
mod row_count;
mod schema;
mod uniqueness;
mod validity;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub(crate) use completeness::Completeness;
pub(crate) use consistency::{DayOverDay, Reconcile};
pub(crate) use custom::Custom;
pub(crate) use freshness::Freshness;
pub(crate) use relationships::Relationships;
pub(crate) use row_count::RowCount;
pub(crate) use schema::Schema;
pub(crate) use uniqueness::Uniqueness;
pub(crate) use validity::Validity;

use super::engine::Status;
use super::spec::{CheckSpec, Kind};
use crate::sql;

/// What one check measures, with its own fields only.
#[derive(Debug, Clone)]
pub(crate) enum Rule {
    RowCount(RowCount),
    Completeness(Completeness),
    Uniqueness(Uniqueness),
    Validity(Validity),
    Freshness(Freshness),
    Custom(Custom),
    /// Consistency: an aggregate against one of another table.
    Reconcile(Reconcile),
    /// Consistency: the last complete day against the day before.
    DayOverDay(DayOverDay),
    Schema(Schema),
    Relationships(Relationships),
}

/// What the engine asks of every rule. No method has a default.
pub(crate) trait Measure {
    /// Columns of the checked table the rule names (checked before any query).
    fn columns(&self) -> Vec<&str>;
    /// Other tables the rule reads, with the columns of each it names.
    fn other_tables(&self) -> Vec<(&str, Vec<&str>)>;
    /// How the observed value is computed; `columns` are the checked table's.
    fn plan(&self, sql: &Sql, columns: &Columns) -> Plan;
    /// Which rows fail, for the sample of failing rows.
    fn failing(&self, sql: &Sql) -> Failing;
    /// The observed value in the rule's unit: `12 (0.06%)`, `9 rows`, `2h`.
    fn reads(&self, observed: f64, pct: Option<f64>) -> String;
    /// Whether the observed value is a count of failing rows (`failed_rows`).
    fn counts_failing_rows(&self) -> bool;
}

/// Column name → DuckDB type, of one table.
pub(crate) type Columns = BTreeMap<String, String>;

/// How a rule's observed value is computed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// Aggregates over the checked table (`DOUBLE` each), fused into one
    /// query with the other checks on that table: the observed value, then
    /// optionally the total it is a share of.
    Aggregates(Vec<String>),
    /// A query of its own returning one row: the observed value, then
    /// optionally the total it is a share of.
    Query { sql: String, values: usize },
    /// Decided from the table's columns alone, without a query.
    Decided(Verdict),
}

/// A result decided by the rule itself rather than by tiers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Verdict {
    pub status: Status,
    pub observed: f64,
    pub threshold: String,
    pub message: Option<String>,
}

/// Which rows a failing-row sample shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failing {
    /// None: the value is about the table as a whole.
    Nothing,
    /// Rows of the checked table, within the check's filter, meeting
    /// `condition` and, when given, the window condition `qualify`.
    Rows {
        condition: String,
        qualify: Option<String>,
    },
    /// The rows of the rule's own query.
    Query(String),
}

/// The SQL context of one check: the run's timestamps, the checked table
/// and the check's filter. Rules write DuckDB SQL through it.
#[derive(Debug, Clone)]
pub(crate) struct Sql {
    pub as_of: DateTime<Utc>,
    pub window_start: DateTime<Utc>,
    /// The checked table, quoted: `"staging"."events"`.
    pub table: String,
    /// The check's filter as a condition, `TRUE` without one.
    pub scope: String,
}

impl Sql {
    pub(crate) fn new(
        as_of: DateTime<Utc>,
        window_start: DateTime<Utc>,
        table: &str,
        filter: Option<&str>,
    ) -> Sql {
        let mut sql = Sql {
            as_of,
            window_start,
            table: table_ref(table),
            scope: String::new(),
        };
        sql.scope = sql.condition(filter);
        sql
    }

    /// `{as_of}` and `{window_start}` replaced by the run's timestamps.
    pub(crate) fn expand(&self, text: &str) -> String {
        sql::expand_params(text, self.as_of, self.window_start)
    }

    /// A filter as a condition, `TRUE` when there is none.
    pub(crate) fn condition(&self, filter: Option<&str>) -> String {
        filter.map_or("TRUE".into(), |f| format!("({})", self.expand(f)))
    }

    /// The rows in scope meeting `condition`, counted as a `DOUBLE`.
    pub(crate) fn count_where(&self, condition: &str) -> String {
        format!(
            "CAST(count(*) FILTER (WHERE {} AND {condition}) AS DOUBLE)",
            self.scope
        )
    }
}

/// `staging.events` → `"staging"."events"`.
pub(crate) fn table_ref(table: &str) -> String {
    table.split('.').map(sql::ident).collect::<Vec<_>>().join(".")
}

/// Every one of `columns` is non-null (`TRUE` for none).
fn non_null(columns: &[String]) -> String {
    if columns.is_empty() {
        return "TRUE".into();
    }
    columns
        .iter()
        .map(|col| format!("{} IS NOT NULL", sql::ident(col)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// `12 (0.06%)`: a count of rows and, when known, its share.
fn count_with_share(observed: f64, pct: Option<f64>) -> String {
    match pct {
        Some(pct) => format!("{} ({pct:.2}%)", observed as u64),
        None => format!("{}", observed as u64),
    }
}

impl Rule {
    /// The kind as written in `checks/*.yaml` and in reports.
    pub(crate) fn kind(&self) -> Kind {
        match self {
            Rule::RowCount(_) => Kind::RowCount,
            Rule::Completeness(_) => Kind::Completeness,
            Rule::Uniqueness(_) => Kind::Uniqueness,
            Rule::Validity(_) => Kind::Validity,
            Rule::Freshness(_) => Kind::Freshness,
            Rule::Custom(_) => Kind::Custom,
            Rule::Reconcile(_) | Rule::DayOverDay(_) => Kind::Consistency,
            Rule::Schema(_) => Kind::Schema,
            Rule::Relationships(_) => Kind::Relationships,
        }
    }

    /// The rule's behaviour, one arm per variant.
    pub(crate) fn measure(&self) -> &dyn Measure {
        match self {
            Rule::RowCount(r) => r,
            Rule::Completeness(r) => r,
            Rule::Uniqueness(r) => r,
            Rule::Validity(r) => r,
            Rule::Freshness(r) => r,
            Rule::Custom(r) => r,
            Rule::Reconcile(r) => r,
            Rule::DayOverDay(r) => r,
            Rule::Schema(r) => r,
            Rule::Relationships(r) => r,
        }
    }
}

/// A problem with one field of a check spec: `(field, message)`.
pub(crate) type Problem = (&'static str, String);

/// The rule of a spec whose kind-specific fields all belong to its kind.
pub(crate) fn build(s: &CheckSpec) -> Result<Rule, Vec<Problem>> {
    match s.kind {
        Kind::RowCount => Ok(Rule::RowCount(RowCount)),
        Kind::Completeness => completeness::build(s).map(Rule::Completeness),
        Kind::Uniqueness => uniqueness::build(s).map(Rule::Uniqueness),
        Kind::Validity => validity::build(s).map(Rule::Validity),
        Kind::Freshness => freshness::build(s).map(Rule::Freshness),
        Kind::Custom => custom::build(s).map(Rule::Custom),
        Kind::Consistency => consistency::build(s),
        Kind::Schema => schema::build(s).map(Rule::Schema),
        Kind::Relationships => relationships::build(s).map(Rule::Relationships),
    }
}

/// The one column a kind checks: `column`, required.
fn column(s: &CheckSpec) -> Result<String, Vec<Problem>> {
    s.column
        .clone()
        .ok_or_else(|| vec![("column", format!("a {} check needs `column`", s.kind.as_str()))])
}

#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{TimeZone, Utc};

    use super::Sql;
    use crate::checks::spec::CheckSpec;

    /// A check spec from YAML flow text, e.g. `{kind: row_count, fail: "< 1"}`.
    pub(crate) fn spec(fields: &str) -> CheckSpec {
        let text = format!("{{name: t, table: staging.events, {fields}}}");
        let doc = crate::yaml::parse(&text).expect("test YAML parses");
        serde_json::from_value(doc.value).expect("a test spec deserialises")
    }

    /// The SQL context of a check on `staging.events` as of 2026-11-20T12:00:00Z, 30 days back.
    pub(crate) fn sql(filter: Option<&str>) -> Sql {
        let as_of = Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap();
        Sql::new(
            as_of,
            as_of - chrono::Duration::days(30),
            "staging.events",
            filter,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::sql;
    use super::*;

    #[test]
    fn the_context_expands_run_timestamps_and_scopes_by_the_filter() {
        let s = sql(Some("event_time > {window_start}"));
        assert_eq!(s.table, "\"staging\".\"events\"");
        assert_eq!(s.scope, "(event_time > TIMESTAMP '2026-10-21 12:00:00.000000')");
        assert_eq!(
            s.count_where("x IS NULL"),
            "CAST(count(*) FILTER (WHERE (event_time > TIMESTAMP '2026-10-21 12:00:00.000000') AND x IS NULL) AS DOUBLE)"
        );
        assert_eq!(sql(None).scope, "TRUE");
        assert_eq!(s.expand("{as_of}"), "TIMESTAMP '2026-11-20 12:00:00.000000'");
    }

    #[test]
    fn shares_read_with_two_decimals() {
        assert_eq!(count_with_share(12.0, Some(0.0612)), "12 (0.06%)");
        assert_eq!(count_with_share(3.0, None), "3");
        assert_eq!(
            non_null(&["a".into(), "b\"".into()]),
            "\"a\" IS NOT NULL AND \"b\"\"\" IS NOT NULL"
        );
    }
}
