//! The serde types of `checks/*.yaml`: one source for parsing and for the
//! JSON Schema that `sluice schema checks` prints.

use schemars::JsonSchema;
use serde::Deserialize;

use super::threshold::Unit;
pub(crate) use crate::ingest::NewColumns;

const NAME: &str = r"^[a-z][a-z0-9_]*$";
const TABLE: &str = r"^(raw|staging|marts)\.[a-z_][a-z0-9_]*$";
const STAGING_TABLE: &str = r"^staging\.[a-z_][a-z0-9_]*$";

/// The patterns of the schema in words, for error messages.
pub(crate) fn describe(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        NAME => "a lower-case name starting with a letter (letters, digits and `_`)",
        TABLE => "a table by layer: `raw.<source>`, `staging.<model>` or `marts.<mart>`",
        STAGING_TABLE => "a staging table, such as `staging.<model>_quarantine`",
        _ => return None,
    })
}

/// A file of checks. Each check's identity is its file plus its name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChecksFile {
    /// The checks of this file, run in order.
    pub checks: Vec<CheckSpec>,
}

/// What a check measures:
/// - `row_count`: rows in the table; thresholds are counts.
/// - `completeness`: missing values (null, and blank with `blank_is_missing`) in `column`.
/// - `uniqueness`: duplicates = rows - distinct non-null keys, of `column` or `columns`.
/// - `validity`: non-null rows of `column` failing `accepted_values`, `regex`,
///   `min`/`max` or `predicate`.
/// - `freshness`: `as_of - max(column)` over values `<= as_of`; thresholds are
///   durations (`24h`).
/// - `custom`: a query (`sql`) that returns the failing rows.
/// - `consistency`: `expression` (an aggregate) against `compare_to` over the
///   same window, or day over day by `day_column` over complete days.
/// - `schema`: `required` columns and types; `new_columns` says what others do.
/// - `relationships`: non-null values of `column` missing from `to.column` of `to.table`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    RowCount,
    Completeness,
    Uniqueness,
    Validity,
    Freshness,
    Custom,
    Consistency,
    Schema,
    Relationships,
}

/// The other side of a reconciliation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompareTo {
    #[schemars(regex(pattern = TABLE))]
    pub table: String,
    /// An aggregate over that table, e.g. `sum(amount)`.
    pub expression: String,
    /// Only rows meeting this condition, e.g. the marts window.
    #[serde(default)]
    pub filter: Option<String>,
}

/// The other side of a relationships check: where the values must exist.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct References {
    #[schemars(regex(pattern = TABLE))]
    pub table: String,
    /// The referenced column, e.g. a primary key.
    pub column: String,
    /// Only values of rows meeting this condition count, e.g. active users.
    #[serde(default)]
    pub filter: Option<String>,
}

/// Which earlier value a change check compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Baseline {
    /// The last run whose gate passed.
    #[default]
    Last,
    /// The mean of the last `runs` runs whose gate passed.
    Mean,
}

/// Tiers compare the change against earlier runs: `> 50%` (relative) or `> 100` (absolute).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeSpec {
    #[serde(default)]
    pub baseline: Baseline,
    /// Runs in the mean (default 7).
    #[serde(default = "default_change_runs")]
    #[schemars(range(min = 1))]
    pub runs: u32,
}

fn default_change_runs() -> u32 {
    7
}

/// Which way an anomaly counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Direction {
    Spike,
    Drop,
    #[default]
    Both,
}

/// Tiers compare the z-score of the metric over earlier runs: `fail: "> 3"`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnomalySpec {
    /// Runs in the baseline (default 10).
    #[serde(default = "default_anomaly_runs")]
    #[schemars(range(min = 2))]
    pub runs: u32,
    /// Runs needed before the check can warn or fail (default 5).
    #[serde(default = "default_min_history")]
    #[schemars(range(min = 2))]
    pub min_history: u32,
    #[serde(default)]
    pub direction: Direction,
}

fn default_anomaly_runs() -> u32 {
    10
}

fn default_min_history() -> u32 {
    5
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::RowCount => "row_count",
            Kind::Completeness => "completeness",
            Kind::Uniqueness => "uniqueness",
            Kind::Validity => "validity",
            Kind::Freshness => "freshness",
            Kind::Custom => "custom",
            Kind::Consistency => "consistency",
            Kind::Schema => "schema",
            Kind::Relationships => "relationships",
        }
    }

    /// The kind-specific fields of [`CheckSpec`] this kind takes.
    pub(crate) fn fields(self) -> &'static [&'static str] {
        match self {
            Kind::RowCount => &[],
            Kind::Completeness => &["column", "blank_is_missing"],
            Kind::Uniqueness => &["column", "columns"],
            Kind::Validity => &["column", "accepted_values", "regex", "min", "max", "predicate"],
            Kind::Freshness => &["column"],
            Kind::Custom => &["sql"],
            Kind::Consistency => &["expression", "compare_to", "day_column"],
            Kind::Schema => &["required", "new_columns"],
            Kind::Relationships => &["column", "to"],
        }
    }

    /// The units its tiers may use and how to say so, or, for a kind that
    /// decides its result itself (no tiers, no history), how it decides.
    pub(crate) fn tiers(self) -> Result<(&'static [Unit], &'static str), &'static str> {
        const SHARE: (&[Unit], &str) = (
            &[Unit::Count, Unit::Percent],
            "a count (`> 0`) or a percent (`> 1%`)",
        );
        const COUNT: (&[Unit], &str) = (&[Unit::Count], "a count such as `< 1` or `> 0`");
        match self {
            Kind::RowCount | Kind::Custom => Ok(COUNT),
            Kind::Completeness
            | Kind::Uniqueness
            | Kind::Validity
            | Kind::Consistency
            | Kind::Relationships => Ok(SHARE),
            Kind::Freshness => Ok((&[Unit::Seconds], "a duration such as `24h`")),
            Kind::Schema => Err("missing columns and wrong types fail, `new_columns` decides the rest"),
        }
    }

    /// Every kind, in the order of the schema.
    pub(crate) fn all() -> impl Iterator<Item = Kind> {
        [
            Kind::RowCount,
            Kind::Completeness,
            Kind::Uniqueness,
            Kind::Validity,
            Kind::Freshness,
            Kind::Custom,
            Kind::Consistency,
            Kind::Schema,
            Kind::Relationships,
        ]
        .into_iter()
    }
}

impl CheckSpec {
    /// The kind-specific fields this spec gives, by their YAML names. The
    /// whole spec is destructured, so a new field must be placed here.
    pub(crate) fn given_fields(&self) -> Vec<&'static str> {
        let CheckSpec {
            name: _,
            table: _,
            kind: _,
            description: _,
            filter: _,
            tags: _,
            quarantined_in: _,
            column,
            columns,
            blank_is_missing,
            accepted_values,
            regex,
            min,
            max,
            predicate,
            sql,
            expression,
            compare_to,
            day_column,
            required,
            new_columns,
            to,
            change: _,
            anomaly: _,
            warn: _,
            fail: _,
            key_columns: _,
            mask: _,
            sample_size: _,
        } = self;
        [
            ("column", column.is_some()),
            ("columns", columns.is_some()),
            ("blank_is_missing", *blank_is_missing),
            ("accepted_values", accepted_values.is_some()),
            ("regex", regex.is_some()),
            ("min", min.is_some()),
            ("max", max.is_some()),
            ("predicate", predicate.is_some()),
            ("sql", sql.is_some()),
            ("expression", expression.is_some()),
            ("compare_to", compare_to.is_some()),
            ("day_column", day_column.is_some()),
            ("required", required.is_some()),
            ("new_columns", new_columns.is_some()),
            ("to", to.is_some()),
        ]
        .into_iter()
        .filter_map(|(field, given)| given.then_some(field))
        .collect()
    }
}

/// One check. Give `warn`, `fail` or both; the more severe result wins.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckSpec {
    /// Unique within the file: lower case, digits and `_`.
    #[schemars(regex(pattern = NAME))]
    pub name: String,
    /// `raw.<source>`, `staging.<model>`, `staging.<model>_quarantine` or `marts.<mart>`.
    #[schemars(regex(pattern = TABLE))]
    pub table: String,
    pub kind: Kind,
    /// What the check protects, shown in reports.
    #[serde(default)]
    pub description: Option<String>,
    /// Only rows meeting this DuckDB SQL condition are checked (dbt's `where`).
    #[serde(default)]
    pub filter: Option<String>,
    /// Labels for `--select tag:<tag>`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Completeness and validity of `raw.<source>`: the staging table that
    /// quarantines every row this check fails, keeping the checked columns as
    /// landed. The failing rows are counted there rather than by testing every
    /// raw row (the share stays of all raw rows); about 100,000 of the raw rows
    /// staging kept are tested too, and one failing among them is an error.
    #[serde(default)]
    #[schemars(regex(pattern = STAGING_TABLE))]
    pub quarantined_in: Option<String>,
    /// The checked column (completeness, uniqueness, validity, freshness, relationships).
    #[serde(default)]
    pub column: Option<String>,
    /// A composite key (uniqueness).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Completeness: count blank text (after trimming) as missing too.
    #[serde(default)]
    pub blank_is_missing: bool,
    /// Validity: the values allowed (compared as text).
    #[serde(default)]
    pub accepted_values: Option<Vec<String>>,
    /// Validity: a regular expression the whole value must match.
    #[serde(default)]
    pub regex: Option<String>,
    /// Validity: the smallest allowed value.
    #[serde(default)]
    pub min: Option<f64>,
    /// Validity: the largest allowed value.
    #[serde(default)]
    pub max: Option<f64>,
    /// Validity: a DuckDB SQL condition every row should meet. `{as_of}` and
    /// `{window_start}` stand for the run's timestamps in any SQL of a check.
    #[serde(default)]
    pub predicate: Option<String>,
    /// Custom: a DuckDB query returning the failing rows.
    #[serde(default)]
    pub sql: Option<String>,
    /// Consistency: an aggregate over `table`, e.g. `sum(revenue)`.
    #[serde(default)]
    pub expression: Option<String>,
    /// Consistency: reconcile `expression` with an aggregate of another table.
    #[serde(default)]
    pub compare_to: Option<CompareTo>,
    /// Consistency: compare the last complete day with the day before, by this column.
    #[serde(default)]
    pub day_column: Option<String>,
    /// Schema: column name to DuckDB type (`BIGINT`, `DECIMAL(18,2)`, or `any`).
    #[serde(default)]
    pub required: Option<std::collections::BTreeMap<String, String>>,
    /// Schema: what a column not in `required` does (default `warn`).
    #[serde(default)]
    pub new_columns: Option<NewColumns>,
    /// Relationships: the table and column every value of `column` must exist in.
    #[serde(default)]
    pub to: Option<References>,
    /// Compare the metric with earlier runs (`_sluice_metrics_history`) instead of a fixed value.
    #[serde(default)]
    pub change: Option<ChangeSpec>,
    /// Flag a metric that is far from earlier runs (z-score).
    #[serde(default)]
    pub anomaly: Option<AnomalySpec>,
    /// The warn tier, e.g. `"> 0"`, `"> 1%"`, `"> 6h"`.
    #[serde(default)]
    pub warn: Option<String>,
    /// The fail tier, e.g. `"> 5%"`, `"< 1"`, `"> 24h"`.
    #[serde(default)]
    pub fail: Option<String>,
    /// Columns that identify a failing row in the sample (default: the checked columns).
    #[serde(default)]
    pub key_columns: Vec<String>,
    /// Columns shown as `***` in the failing-row sample.
    #[serde(default)]
    pub mask: Vec<String>,
    /// Rows in the failing-row sample (default 20, 0 for none).
    #[serde(default)]
    #[schemars(range(max = 10000))]
    pub sample_size: Option<u32>,
}

/// The JSON Schema of a checks file.
pub(crate) fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(ChecksFile)).expect("a schema is JSON")
}
