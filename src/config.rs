//! `sluice.yaml`: the pipeline a run executes — sources, staging SQL, marts and
//! exports. An absent file means the default pipeline, which is itself the
//! `sluice.yaml` and SQL below, compiled into the binary (`sluice init` writes
//! them out): there is no second code path for the demo.
//!
//! The file is validated against the JSON Schema generated from these types
//! (printed by `sluice schema`), then checked for references between its parts;
//! every problem is reported at once with its line and key.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ingest::{
    ColumnType, Contract, ContractFacets, ContractSpec, CursorValue, Format, HttpSpec, Incremental,
    IncrementalSpec, NewColumns, Source,
};
use crate::marts::MartPlan;
use crate::stage::WriteMode;
use crate::yaml::{self, ConfigError, Document, key_of};

/// The default pipeline's files, as `sluice init` writes them.
pub(crate) const DEFAULT_FILES: [(&str, &str); 3] = [
    ("sluice.yaml", include_str!("../sluice.yaml")),
    (
        "sql/staging/events.sql",
        include_str!("../sql/staging/events.sql"),
    ),
    ("checks/events.yaml", include_str!("../checks/events.yaml")),
];

/// The name a file gets in messages when it is the built-in one.
const BUILT_IN: &str = "<built-in>";

/// The default pipeline's checks, for when it runs with no checks directory:
/// each named as in messages (`<built-in>/events.yaml`), with its text.
pub(crate) fn built_in_checks() -> Vec<(String, String)> {
    DEFAULT_FILES
        .iter()
        .filter_map(|(rel, text)| {
            let name = rel.strip_prefix("checks/")?;
            Some((format!("{BUILT_IN}/{name}"), text.to_string()))
        })
        .collect()
}

const IDENT: &str = r"^[a-z_][a-z0-9_]*$";
const KEY_EXPR: &str = r"^\s*((day|hour|month|year)\(\s*[a-z_][a-z0-9_]*\s*\)|[a-z_][a-z0-9_]*)\s*$";
const AGGREGATE: &str =
    r"^\s*(count\(\s*\*?\s*\)|(sum|count|count_distinct|min|max|mean)\(\s*[a-z_][a-z0-9_]*\s*\))\s*$";
const SORT_KEY: &str = r"(?i)^\s*[a-z_][a-z0-9_]*(\s+(asc|desc))?(\s+nulls\s+(first|last))?\s*$";

/// The patterns of the schema in words, for error messages.
fn describe(pattern: &str) -> Option<&'static str> {
    Some(match pattern {
        IDENT => "a lower-case name (letters, digits and `_`)",
        KEY_EXPR => "a column, or `day(column)`, `hour(column)`, `month(column)` or `year(column)`",
        AGGREGATE => {
            "`function(column)` with sum, count, count_distinct, min, max or mean (`count()` counts rows)"
        }
        SORT_KEY => "`column`, `column desc` or `column asc nulls first`",
        _ => return None,
    })
}

/// A pipeline: what to read, how to stage it, which marts to build, where
/// they go.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PipelineFile {
    /// Names the pipeline in metrics (the Pushgateway group
    /// `/metrics/job/sluice/pipeline/<name>`), traces and run history.
    #[serde(default = "default_name")]
    #[schemars(regex(pattern = IDENT))]
    pub pipeline: String,
    /// Days in the window of every mart with `lookback` and no `days` of its
    /// own (`--lookback-days` wins). Default: 30.
    #[schemars(range(min = 1, max = 36500))]
    pub lookback_days: Option<u32>,
    /// The IANA time zone (`Europe/Berlin`) whose wall clock the marts'
    /// `day()`, `hour()`, `month()` and `year()` keys follow, and `sql:` marts
    /// see timestamps in; a mart's own `time_zone` wins. Times are still
    /// published as UTC. Default: UTC.
    pub time_zone: Option<String>,
    /// Variables and their defaults, used as `{name}` in a source's `http`
    /// (URL, parameters, headers); `--var name=value` sets one for a run.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Directory of the checks, relative to this file (`--checks-dir` wins).
    /// Default: `checks/` beside this file.
    pub checks: Option<String>,
    /// Where raw rows come from; each lands in `raw.<name>`.
    #[schemars(length(min = 1))]
    pub sources: Vec<SourceSpec>,
    /// DuckDB SQL that turns raw rows into typed, clean `staging.<name>` tables.
    #[schemars(length(min = 1))]
    pub staging: Vec<StagingSpec>,
    /// Aggregates over staging models, computed with Polars; each is a
    /// candidate table `marts.<name>` until the checks pass.
    #[schemars(length(min = 1))]
    pub marts: Vec<MartSpec>,
    /// Files the marts are published to. Every mart also goes to SQLite as a
    /// table of its name unless an export says otherwise.
    #[serde(default)]
    pub exports: Vec<ExportSpec>,
    /// Where the raw and staging layers live and how long they are kept.
    pub lake: Option<LakeSpec>,
}

/// The lake: the raw and staging layers of each run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LakeSpec {
    /// A directory relative to this file, or `s3://bucket/prefix` (each
    /// run's layers under `runs/<run_id>/`, found through
    /// `manifests/<run_id>.json`). `--data-dir` wins. Default: `data`.
    pub path: Option<String>,
    /// How long a lake in object storage keeps earlier runs' layers: `10
    /// runs` or a duration (`30 days`). The newest layer, the last published
    /// run's and those that kept models go on from always stay. Default:
    /// every run's. A local lake keeps only the newest layer anyway.
    pub retain: Option<String>,
}

fn default_name() -> String {
    "default".into()
}

/// One source of raw rows.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SourceSpec {
    #[schemars(regex(pattern = IDENT))]
    pub name: String,
    /// A file, a directory (read recursively) or a glob, or a list of them,
    /// relative to this file; `--input` wins. Default: `input`.
    pub path: Option<OneOrMany>,
    /// Pages of JSON records from an HTTP API, instead of files.
    pub http: Option<HttpSpec>,
    /// Read only what is new since the last published run: `files` (a
    /// landing directory that only grows) or a cursor column (an `http`
    /// source). Pair it with a `write: append` or `merge` staging model.
    pub incremental: Option<Incremental>,
    /// Read every file as this format. Default: by the file name (`.csv`,
    /// `.ndjson`, `.jsonl`, `.parquet`, compressed with `.gz` or `.zst`).
    pub format: Option<Format>,
    /// The columns every file must have, in order, and what they hold
    /// (Parquet columns of that type are taken as they are; text is parsed
    /// by the staging SQL).
    #[schemars(length(min = 1))]
    pub columns: Ordered<ColumnType>,
    /// What a column that is not declared does: `ignore`, `warn` (default) or
    /// `fail` (the same as `schema_contract.new_columns` `discard_value`,
    /// `evolve`, `freeze`).
    pub new_columns: Option<NewColumns>,
    /// What a change in the data does, with dlt's names: `evolve`, `freeze`,
    /// `discard_row` or `discard_value`, for every change or for each of
    /// `new_columns`, `missing_columns` and `data_type`.
    pub schema_contract: Option<ContractSpec>,
    /// Declared columns a file may lack (null in every row of it): a key
    /// that an API leaves out of a whole page, a column added later.
    #[serde(default)]
    pub optional: Vec<String>,
}

/// The mart that mart `i` reads, if it reads a mart.
fn upstream(marts: &[MartSpec], i: usize) -> Option<usize> {
    marts.iter().position(|m| m.name == marts[i].from)
}

/// The marts mart `start` reads through `from`, when they come back to it.
fn mart_cycle(marts: &[MartSpec], start: usize) -> Option<Vec<String>> {
    let mut path = vec![marts[start].name.clone()];
    let mut i = start;
    while let Some(next) = upstream(marts, i) {
        path.push(marts[next].name.clone());
        if next == start {
            return Some(path);
        }
        if path.len() > marts.len() + 1 {
            return None;
        }
        i = next;
    }
    None
}

/// A value or a list of values.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// One staging model.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StagingSpec {
    #[schemars(regex(pattern = IDENT))]
    pub name: String,
    /// The source it reads, as `raw.<source>`. Default: the source of the same name.
    pub source: Option<String>,
    /// A DuckDB SQL script, relative to this file, that creates
    /// `staging.<name>` and, for the rows it rejects,
    /// `staging.<name>_quarantine` with a `_reason` column.
    pub sql: String,
    /// The quarantine reasons the script gives, in the order it checks them:
    /// each is counted (in metrics and history) even when no row has it.
    #[serde(default)]
    pub reasons: Vec<String>,
    /// How this run's rows join the model's rows of earlier runs: `replace`
    /// (default: the model is this run's rows), `append`, or `merge` by
    /// `primary_key` (a record's newest version replaces the older ones).
    /// The marts and checks see the whole model.
    #[serde(default)]
    pub write: WriteMode,
    /// The columns that identify a record, for `merge`.
    #[serde(default)]
    pub primary_key: Vec<String>,
    /// Which version of a record is newest, for `merge`: a column such as
    /// `updated_at`. On a tie, or without it, this run's version wins.
    #[schemars(regex(pattern = IDENT))]
    pub order_by: Option<String>,
    /// A DuckDB condition that marks a record's newest version as a
    /// deletion (`merge`): the record leaves the model.
    pub delete_when: Option<String>,
    /// Columns the staging layer is partitioned by (a `replace` model):
    /// `staging/<name>/<column>=<value>/…parquet`, each file keeping every
    /// column, so readers can skip partitions. Default: one file,
    /// `staging/<name>.parquet`.
    #[serde(default)]
    pub partition_by: Vec<ColumnName>,
}

/// One mart: declarative (`group_by`, `aggregate`, `sort`, `limit`, `rank`,
/// compiled to Polars lazy expressions) or Polars SQL (`sql`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct MartSpec {
    #[schemars(regex(pattern = IDENT))]
    pub name: String,
    /// The staging model it reads.
    #[schemars(regex(pattern = IDENT))]
    pub from: String,
    /// Only rows meeting this DuckDB SQL condition (applied where the rows
    /// leave DuckDB, like the window).
    pub filter: Option<String>,
    /// Only rows with `as_of - days < column <= as_of`.
    pub lookback: Option<Lookback>,
    /// Group keys: column names, or `name: expression` pairs where an
    /// expression is a column or `day(col)`, `hour(col)`, `month(col)`, `year(col)`.
    pub group_by: Option<GroupBy>,
    /// `name: function(column)` with sum, count, count_distinct, min, max or
    /// mean; `count()` counts rows.
    pub aggregate: Option<Ordered<Aggregate>>,
    /// The listed values of a text column become columns, each the
    /// aggregate over the group's rows with that value (with `group_by`;
    /// listing the values keeps the columns known before any data is read).
    pub pivot: Option<PivotSpec>,
    /// Columns of the model to keep as they are, one row per row: with
    /// `sort` and `limit`, the top rows by a sort (no aggregate).
    #[schemars(length(min = 1))]
    pub select: Option<Vec<String>>,
    /// Polars SQL over the model (a table named as the model, window and
    /// filter already applied): the escape hatch for what the keys above
    /// cannot say. Decimal columns arrive as floating point here.
    pub sql: Option<String>,
    /// Order of the rows: `column`, `column desc`, `column asc nulls first`.
    /// Nulls come last unless said otherwise.
    #[serde(default)]
    pub sort: Vec<SortKey>,
    /// Keep the first rows only.
    #[schemars(range(min = 1))]
    pub limit: Option<u32>,
    /// Apply `limit` (and number `rank`) within each group of these mart
    /// columns instead of over the whole mart: the top N per group.
    #[serde(default)]
    pub limit_per: Vec<String>,
    /// Add the row number (1, 2, ...) after sorting as the first column, named so.
    #[schemars(regex(pattern = IDENT))]
    pub rank: Option<String>,
    /// The time zone of this mart's day, hour, month and year keys (or of
    /// the timestamps a `sql:` mart sees), instead of the pipeline's.
    pub time_zone: Option<String>,
}

/// The window column, with its own length or the run's.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Lookback {
    /// A timestamp column; the window is the run's `lookback_days`.
    Column(#[schemars(regex(pattern = IDENT))] String),
    /// A timestamp column and a window of its own.
    Window {
        #[schemars(regex(pattern = IDENT))]
        column: String,
        #[schemars(range(min = 1, max = 36500))]
        days: u32,
    },
}

/// Group keys: a list of columns, or names and expressions.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum GroupBy {
    Columns(Vec<ColumnName>),
    Named(Ordered<KeyExpr>),
}

/// A column name.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub(crate) struct ColumnName(#[schemars(regex(pattern = IDENT))] pub String);

/// A group key: `column` or `day(column)`, `hour(column)`, `month(column)`, `year(column)`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub(crate) struct KeyExpr(#[schemars(regex(pattern = KEY_EXPR))] pub String);

/// An aggregate: `sum(col)`, `count()`, `count(col)`, `count_distinct(col)`,
/// `min(col)`, `max(col)` or `mean(col)`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub(crate) struct Aggregate(#[schemars(regex(pattern = AGGREGATE))] pub String);

/// A pivot: `values` of `column` become the columns `<prefix><value>`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PivotSpec {
    /// A text column of the model.
    #[schemars(regex(pattern = IDENT))]
    pub column: String,
    /// Its values that become columns, in this order; other values are left out.
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
    /// What each of those columns holds: `sum(col)`, `count()`, ...
    pub aggregate: Aggregate,
    /// Put before each value to name its column. Default: none.
    #[serde(default)]
    pub prefix: String,
}

/// A sort key: `column`, then optionally `asc`/`desc` and `nulls first`/`nulls last`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(transparent)]
pub(crate) struct SortKey(#[schemars(regex(pattern = SORT_KEY))] pub String);

/// One mart's way out.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportSpec {
    #[schemars(regex(pattern = IDENT))]
    pub mart: String,
    /// A CSV file, relative to the output directory (amounts with their
    /// decimals, times as ISO 8601 UTC).
    pub csv: Option<String>,
    /// A Parquet file, relative to the output directory.
    pub parquet: Option<String>,
    /// The SQLite table it replaces, or `false` to keep it out of the
    /// database. Default: the mart's name.
    pub sqlite: Option<SqliteTarget>,
    /// A Delta Lake table: a directory relative to the output directory or
    /// `s3://bucket/path`, or the table with its settings.
    pub delta: Option<DeltaTarget>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum DeltaTarget {
    Path(String),
    Table(DeltaSpec),
}

/// A Delta Lake table a mart is published to: one new version per
/// published run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeltaSpec {
    /// A directory relative to the output directory, or `s3://bucket/path`.
    pub path: String,
    /// `fixed` (default): a mart whose columns or types changed fails the
    /// publish; `evolve`: the new version has the mart's new columns.
    #[serde(default)]
    pub schema: SchemaChanges,
    /// How long replaced data files (and, for a duration, log entries)
    /// are kept for time travel: `30 days`, or the last `10 runs`' versions;
    /// older ones are vacuumed after each publish.
    /// Default: kept (Delta's defaults: 7 days of files once vacuumed, 30 of log).
    pub retain: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum SchemaChanges {
    #[default]
    Fixed,
    Evolve,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum SqliteTarget {
    Table(#[schemars(regex(pattern = IDENT))] String),
    Enabled(bool),
}

/// A YAML mapping whose order matters (columns, keys, aggregates).
#[derive(Debug, Clone)]
pub(crate) struct Ordered<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ordered<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = Ordered<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Ordered(entries))
            }
        }
        d.deserialize_map(Visit(PhantomData))
    }
}

impl<T: JsonSchema> JsonSchema for Ordered<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Ordered_{}", T::schema_name()).into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <BTreeMap<String, T>>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

/// The JSON Schema of `sluice.yaml`.
pub(crate) fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(PipelineFile)).expect("a schema is JSON")
}

/// A loaded, cross-checked pipeline.
#[derive(Debug, Clone)]
pub(crate) struct Pipeline {
    pub spec: PipelineFile,
    /// The file as named in messages (`sluice.yaml`, `<built-in>/sluice.yaml`).
    pub file: String,
    /// Where relative paths start; `None` for the built-in pipeline.
    pub dir: Option<PathBuf>,
    /// The text of each staging model's SQL, in `spec.staging` order.
    pub staging_sql: Vec<String>,
    /// Each mart, parsed, in `spec.marts` order.
    pub marts: Vec<MartPlan>,
    /// Identifies the logic: this file and the SQL it names.
    pub hash: String,
    doc: Document,
}

impl Pipeline {
    /// `path` when given (it must exist), else `sluice.yaml` when it exists,
    /// else the built-in default pipeline.
    pub(crate) fn load(path: Option<&Path>) -> Result<Self> {
        let chosen = path.unwrap_or(Path::new("sluice.yaml"));
        if path.is_none() && !chosen.exists() {
            return Self::built_in();
        }
        let text = std::fs::read_to_string(chosen).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => Error::ConfigNotFound {
                path: chosen.to_path_buf(),
            },
            _ => Error::io("read", chosen, e),
        })?;
        let dir = chosen.parent().map(Path::to_path_buf).unwrap_or_default();
        Self::parse(&chosen.display().to_string(), &text, Some(dir))
    }

    /// The default pipeline compiled into the binary.
    pub(crate) fn built_in() -> Result<Self> {
        Self::parse(&format!("{BUILT_IN}/sluice.yaml"), DEFAULT_FILES[0].1, None)
    }

    fn parse(file: &str, text: &str, dir: Option<PathBuf>) -> Result<Self> {
        let validator = jsonschema::options()
            .build(&schema())
            .expect("the generated sluice.yaml schema is valid");
        let (mut errors, parsed) = yaml::load_all::<PipelineFile>(file, text, &validator, &describe);
        let Some((spec, doc)) = parsed else {
            return Err(Error::Config { errors });
        };
        let mut pipeline = Pipeline {
            spec,
            file: file.to_string(),
            dir,
            staging_sql: Vec::new(),
            marts: Vec::new(),
            hash: String::new(),
            doc,
        };
        errors.extend(pipeline.cross_check());
        let mut hash = Sha256::new();
        hash.update(text.as_bytes());
        for (i, model) in pipeline.spec.staging.iter().enumerate() {
            match pipeline.read(&model.sql) {
                Ok(sql) => {
                    hash.update(sql.as_bytes());
                    pipeline.staging_sql.push(sql);
                }
                Err(message) => errors.push(pipeline.error(&format!("/staging/{i}/sql"), message)),
            }
        }
        let zone = match pipeline.spec.time_zone.as_deref().map(crate::marts::time_zone) {
            Some(Ok(zone)) => zone,
            Some(Err(message)) => {
                errors.push(pipeline.error("/time_zone", message));
                None
            }
            None => None,
        };
        for (i, mart) in pipeline.spec.marts.iter().enumerate() {
            match crate::marts::plan(mart, zone.as_deref()) {
                Ok(plan) => pipeline.marts.push(plan),
                Err(problems) => errors.extend(
                    problems
                        .into_iter()
                        .map(|(at, message)| pipeline.error(&format!("/marts/{i}/{at}"), message)),
                ),
            }
        }
        pipeline.hash = crate::format::hex(&hash.finalize());
        if errors.is_empty() {
            Ok(pipeline)
        } else {
            errors.sort_by_key(|e| e.line);
            Err(Error::Config { errors })
        }
    }

    /// A problem at a JSON Pointer of this file.
    pub(crate) fn error(&self, pointer: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            line: self.doc.line(pointer),
            key: key_of(pointer),
            message,
        }
    }

    /// A path from this file, relative to its directory.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        match &self.dir {
            Some(dir) if Path::new(rel).is_relative() => dir.join(rel),
            _ => PathBuf::from(rel),
        }
    }

    /// A file this pipeline names (built in: one of [`DEFAULT_FILES`]).
    fn read(&self, rel: &str) -> std::result::Result<String, String> {
        match &self.dir {
            None => DEFAULT_FILES
                .iter()
                .find(|(name, _)| *name == rel)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| format!("`{rel}` is not a built-in file")),
            Some(_) => {
                let path = self.path(rel);
                std::fs::read_to_string(&path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            }
        }
    }

    /// References between the parts: names unique, models, marts and
    /// exports pointing at things that exist.
    fn cross_check(&self) -> Vec<ConfigError> {
        let s = &self.spec;
        let mut errors = Vec::new();
        let mut unique = |kind: &str, names: Vec<&str>| {
            for (i, name) in names.iter().enumerate() {
                if names[..i].contains(name) {
                    errors.push(self.error(
                        &format!("/{kind}/{i}/name"),
                        format!("`{name}` is already the name of another entry of `{kind}`"),
                    ));
                }
            }
        };
        unique("sources", s.sources.iter().map(|x| x.name.as_str()).collect());
        unique("staging", s.staging.iter().map(|x| x.name.as_str()).collect());
        unique("marts", s.marts.iter().map(|x| x.name.as_str()).collect());
        for (i, source) in s.sources.iter().enumerate() {
            for (k, column) in source.optional.iter().enumerate() {
                if !source.columns.0.iter().any(|(c, _)| c == column) {
                    let declared: Vec<&str> = source.columns.0.iter().map(|(c, _)| c.as_str()).collect();
                    errors.push(self.error(
                        &format!("/sources/{i}/optional/{k}"),
                        format!(
                            "`{column}` is not a column of the source; its columns: {}",
                            declared.join(", ")
                        ),
                    ));
                }
            }
        }
        for (i, source) in s.sources.iter().enumerate() {
            if let Some(http) = &source.http {
                errors.extend(self.check_http(i, source, http));
            }
            let both = matches!(
                &source.schema_contract,
                Some(ContractSpec::All(_))
                    | Some(ContractSpec::Each(ContractFacets {
                        new_columns: Some(_),
                        ..
                    }))
            );
            if source.new_columns.is_some() && both {
                errors.push(self.error(
                    &format!("/sources/{i}/new_columns"),
                    "give `new_columns` or `schema_contract` (its `new_columns`), not both".into(),
                ));
            }
            match &source.incremental {
                Some(Incremental::Cursor(spec)) => errors.extend(self.check_incremental(i, source, spec)),
                Some(_) if source.http.is_some() => errors.push(self.error(
                    &format!("/sources/{i}/incremental"),
                    "`files` is for a source of files; an `http` source is incremental by a cursor: `{cursor: updated_at}`".into(),
                )),
                _ => {}
            }
        }
        let sources: Vec<&str> = s.sources.iter().map(|x| x.name.as_str()).collect();
        for (i, model) in s.staging.iter().enumerate() {
            let source = self.source_of(model);
            if !sources.contains(&source) {
                let pointer = if model.source.is_some() { "source" } else { "name" };
                errors.push(self.error(
                    &format!("/staging/{i}/{pointer}"),
                    format!(
                        "no source named `{source}`; sources: {}{}",
                        sources.join(", "),
                        if model.source.is_none() {
                            " (set `source`)"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
        for (i, model) in s.staging.iter().enumerate() {
            let at = |key: &str| format!("/staging/{i}/{key}");
            match model.write {
                WriteMode::Merge if model.primary_key.is_empty() => errors.push(self.error(
                    &at("primary_key"),
                    "a `merge` model needs the columns that identify a record: `primary_key: [id]`".into(),
                )),
                WriteMode::Merge => {}
                mode => {
                    for (key, given) in [
                        ("primary_key", !model.primary_key.is_empty()),
                        ("order_by", model.order_by.is_some()),
                        ("delete_when", model.delete_when.is_some()),
                    ] {
                        if given {
                            errors.push(self.error(
                                &at(key),
                                format!(
                                    "`{key}` is for `write: merge`; this model's `write` is `{}`",
                                    format!("{mode:?}").to_lowercase()
                                ),
                            ));
                        }
                    }
                }
            }
            if model.write != WriteMode::Replace && !model.partition_by.is_empty() {
                errors.push(self.error(
                    &at("partition_by"),
                    "`partition_by` is for a `write: replace` model (a kept model's versions are one file each)".into(),
                ));
            }
        }
        let models: Vec<&str> = s.staging.iter().map(|x| x.name.as_str()).collect();
        let mart_names: Vec<&str> = s.marts.iter().map(|x| x.name.as_str()).collect();
        for (i, mart) in s.marts.iter().enumerate() {
            let at = |key: &str| format!("/marts/{i}/{key}");
            let from = mart.from.as_str();
            match (models.contains(&from), mart_names.contains(&from)) {
                (false, false) => errors.push(self.error(
                    &at("from"),
                    format!(
                        "no staging model or mart named `{from}`; models: {}; marts: {}",
                        models.join(", "),
                        mart_names.join(", ")
                    ),
                )),
                (true, true) => errors.push(self.error(
                    &at("from"),
                    format!("`{from}` is both a staging model and a mart: rename one of them"),
                )),
                (false, true) => {
                    if let Some(cycle) = mart_cycle(&s.marts, i) {
                        errors.push(self.error(
                            &at("from"),
                            format!("marts read each other in a circle: {}", cycle.join(" <- ")),
                        ));
                    }
                }
                (true, false) => {}
            }
            let declarative = mart.group_by.is_some() || mart.aggregate.is_some() || mart.pivot.is_some();
            match (&mart.sql, declarative, &mart.select) {
                (Some(_), true, _) => errors.push(self.error(
                    &at("sql"),
                    "give `sql` or `group_by`/`aggregate`, not both".into(),
                )),
                (Some(_), false, Some(_)) => {
                    errors.push(self.error(&at("select"), "give `sql` or `select`, not both".into()))
                }
                (None, true, Some(_)) => errors.push(self.error(
                    &at("select"),
                    "`select` keeps rows as they are: give it or `group_by`/`aggregate`, not both".into(),
                )),
                (None, false, None) => errors.push(self.error(
                    &at("name"),
                    "a mart needs `aggregate` (with `group_by` to group), `select` or `sql`".into(),
                )),
                _ => {}
            }
        }
        let marts: Vec<&str> = s.marts.iter().map(|x| x.name.as_str()).collect();
        for (i, export) in s.exports.iter().enumerate() {
            if !marts.contains(&export.mart.as_str()) {
                errors.push(self.error(
                    &format!("/exports/{i}/mart"),
                    format!("no mart named `{}`; marts: {}", export.mart, marts.join(", ")),
                ));
            }
            if export.csv.is_none()
                && export.parquet.is_none()
                && export.sqlite.is_none()
                && export.delta.is_none()
            {
                errors.push(self.error(
                    &format!("/exports/{i}"),
                    "an export needs `csv`, `parquet`, `sqlite` or `delta`".into(),
                ));
            }
            if let Some(DeltaTarget::Table(DeltaSpec {
                retain: Some(retain), ..
            })) = &export.delta
                && let Err(e) = crate::lake::Retain::parse(retain)
            {
                errors.push(self.error(&format!("/exports/{i}/delta/retain"), e));
            }
        }
        if let Some(retain) = s.lake.as_ref().and_then(|l| l.retain.as_deref())
            && let Err(e) = crate::lake::Retain::parse(retain)
        {
            errors.push(self.error("/lake/retain", e));
        }
        errors
    }

    /// The marts in the order they can be computed: each layer reads only
    /// staging models and marts of earlier layers (a valid pipeline has no
    /// circle of marts).
    pub(crate) fn mart_layers(&self) -> Vec<Vec<usize>> {
        let marts = &self.spec.marts;
        let depth = |mut i: usize| {
            let mut depth = 0;
            while let Some(next) = upstream(marts, i) {
                if depth > marts.len() {
                    break;
                }
                depth += 1;
                i = next;
            }
            depth
        };
        let mut layers: Vec<Vec<usize>> = Vec::new();
        for i in 0..marts.len() {
            let d = depth(i);
            if layers.len() <= d {
                layers.resize(d + 1, Vec::new());
            }
            layers[d].push(i);
        }
        layers
    }

    /// Whether `name` is a mart (else a staging model) as a mart's `from`.
    pub(crate) fn is_mart(&self, name: &str) -> bool {
        self.spec.marts.iter().any(|m| m.name == name)
    }

    /// The source a staging model reads.
    pub(crate) fn source_of<'a>(&'a self, model: &'a StagingSpec) -> &'a str {
        model.source.as_deref().unwrap_or(&model.name)
    }

    /// The sources as ingest reads them.
    pub(crate) fn sources(&self) -> Vec<Source> {
        self.spec
            .sources
            .iter()
            .map(|s| Source {
                name: s.name.clone(),
                columns: s.columns.0.clone(),
                contract: Contract::new(s.schema_contract.as_ref(), s.new_columns),
                format: s.format,
                optional: s.optional.clone(),
                http: s.http.clone(),
                incremental: s.incremental.clone(),
            })
            .collect()
    }

    /// What is wrong with the `http` of source `i`: what it cannot be
    /// given with, durations, variables, credentials.
    fn check_http(&self, i: usize, source: &SourceSpec, http: &HttpSpec) -> Vec<ConfigError> {
        let at = |key: &str| format!("/sources/{i}/{key}");
        let mut errors = Vec::new();
        for (key, given) in [
            ("path", source.path.is_some()),
            ("format", source.format.is_some()),
        ] {
            if given {
                errors.push(self.error(
                    &at(key),
                    format!(
                        "a source reads files (`path`) or an API (`http`), not both: `{key}` is for files"
                    ),
                ));
            }
        }
        for (key, parsed) in http.durations() {
            if let Err(message) = parsed {
                errors.push(self.error(&at(&format!("http/{key}")), message));
            }
        }
        for (key, name) in http.placeholders() {
            if !self.spec.vars.contains_key(&name) {
                let declared: Vec<&str> = self.spec.vars.keys().map(String::as_str).collect();
                errors.push(self.error(
                    &at(&format!("http/{key}")),
                    format!(
                        "`{{{name}}}` is not a variable: declare it under `vars` with its default (declared: {})",
                        if declared.is_empty() { "none".to_string() } else { declared.join(", ") }
                    ),
                ));
            }
        }
        if let Some(auth) = &http.auth
            && auth.bearer.is_some() == auth.basic.is_some()
        {
            errors.push(self.error(
                &at("http/auth"),
                "give `bearer` (a token) or `basic` (a user name and a password), one of them".into(),
            ));
        }
        errors
    }

    /// What is wrong with the `incremental` of source `i`.
    fn check_incremental(&self, i: usize, source: &SourceSpec, spec: &IncrementalSpec) -> Vec<ConfigError> {
        let at = |key: &str| format!("/sources/{i}/incremental/{key}");
        let mut errors = Vec::new();
        if source.http.is_none() {
            errors.push(self.error(
                &format!("/sources/{i}/incremental"),
                "a cursor is for an `http` source; a landing directory that only grows is `incremental: files`".into(),
            ));
        }
        let ty = source
            .columns
            .0
            .iter()
            .find(|(c, _)| *c == spec.cursor)
            .map(|(_, t)| *t);
        match ty {
            Some(ColumnType::Timestamp | ColumnType::Integer) => {}
            Some(other) => errors.push(self.error(
                &at("cursor"),
                format!(
                    "the cursor `{}` is a {} column: it must be a timestamp or an integer",
                    spec.cursor,
                    format!("{other:?}").to_lowercase()
                ),
            )),
            None => errors.push(self.error(
                &at("cursor"),
                format!("`{}` is not a column of the source", spec.cursor),
            )),
        }
        if let (Some(ty), Some(initial)) = (ty, &spec.initial)
            && CursorValue::parse(initial, ty).is_none()
        {
            errors.push(self.error(
                &at("initial"),
                format!("`{initial}` is not a value of the cursor (RFC 3339 for a timestamp, such as `2026-01-01T00:00:00Z`)"),
            ));
        }
        if let Some(lag) = &spec.lag
            && let Err(e) = humantime::parse_duration(lag.trim())
        {
            errors.push(self.error(
                &at("lag"),
                format!("`{lag}` is not a duration such as `1h` ({e})"),
            ));
        }
        errors
    }

    /// The values of the pipeline's variables for a run: `vars`, with
    /// `--var` over them; a `--var` the file does not declare is an error.
    pub(crate) fn vars(&self, flags: &[(String, String)]) -> Result<BTreeMap<String, String>> {
        let mut vars = self.spec.vars.clone();
        for (name, value) in flags {
            match vars.get_mut(name) {
                Some(v) => *v = value.clone(),
                None => {
                    return Err(Error::UnknownVar {
                        name: name.clone(),
                        declared: self.spec.vars.keys().cloned().collect(),
                    });
                }
            }
        }
        Ok(vars)
    }

    /// The input paths of a source: `--input` when given, else its `path`
    /// (relative to this file), else `input`.
    pub(crate) fn inputs(&self, source: &SourceSpec, flag: &[String]) -> Vec<String> {
        if !flag.is_empty() {
            return flag.to_vec();
        }
        let paths = match &source.path {
            None => vec!["input".to_string()],
            Some(OneOrMany::One(p)) => vec![p.clone()],
            Some(OneOrMany::Many(ps)) => ps.clone(),
        };
        // A bucket's URL is not relative to this file.
        paths
            .iter()
            .map(|p| match crate::object::is_remote(p) {
                true => p.clone(),
                false => self.path(p).display().to_string(),
            })
            .collect()
    }

    /// The lake: `flag` (`--data-dir`) when given, else this file's
    /// `lake.path` (relative to it), else `data`.
    pub(crate) fn lake(&self, flag: Option<&str>) -> crate::lake::Location {
        let configured = self.spec.lake.as_ref().and_then(|l| l.path.as_deref());
        match (flag, configured) {
            (Some(dir), _) => crate::lake::Location::new(dir),
            (None, Some(p)) if crate::object::is_remote(p) => crate::lake::Location::new(p),
            (None, Some(p)) => crate::lake::Location::Local(self.path(p)),
            (None, None) => crate::lake::Location::Local(PathBuf::from("data")),
        }
    }

    /// How long a lake in object storage keeps earlier runs' layers.
    pub(crate) fn lake_retention(&self) -> Option<crate::lake::Retain> {
        // Checked with the configuration.
        let retain = self.spec.lake.as_ref()?.retain.as_deref()?;
        crate::lake::Retain::parse(retain).ok()
    }

    /// The checks directory this file names, if any.
    pub(crate) fn checks_dir(&self) -> Option<PathBuf> {
        match (&self.spec.checks, &self.dir) {
            (Some(dir), _) => Some(self.path(dir)),
            (None, Some(dir)) => Some(dir.join("checks")),
            (None, None) => None,
        }
    }

    /// Whether this is the built-in default pipeline.
    pub(crate) fn is_built_in(&self) -> bool {
        self.dir.is_none()
    }

    /// Where mart `name` is published.
    pub(crate) fn exports_of(&self, name: &str) -> Exports {
        let mut out = Exports {
            sqlite: Some(name.to_string()),
            csv: Vec::new(),
            parquet: Vec::new(),
            delta: Vec::new(),
        };
        for e in self.spec.exports.iter().filter(|e| e.mart == name) {
            match &e.sqlite {
                Some(SqliteTarget::Table(t)) => out.sqlite = Some(t.clone()),
                Some(SqliteTarget::Enabled(false)) => out.sqlite = None,
                Some(SqliteTarget::Enabled(true)) | None => {}
            }
            out.csv.extend(e.csv.clone());
            out.parquet.extend(e.parquet.clone());
            out.delta.extend(e.delta.as_ref().map(|d| match d {
                DeltaTarget::Path(path) => DeltaSpec {
                    path: path.clone(),
                    schema: SchemaChanges::Fixed,
                    retain: None,
                },
                DeltaTarget::Table(spec) => spec.clone(),
            }));
        }
        out
    }
}

/// Where one mart is published: its SQLite table (if any), its CSV and
/// Parquet files relative to the output directory, and its Delta tables.
#[derive(Debug, Clone)]
pub(crate) struct Exports {
    pub sqlite: Option<String>,
    pub csv: Vec<String>,
    pub parquet: Vec<String>,
    pub delta: Vec<DeltaSpec>,
}

/// Writes the default pipeline's files into `dir` for a user to edit; never
/// overwrites a file that exists.
pub(crate) fn init(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (rel, _) in DEFAULT_FILES {
        let path = dir.join(rel);
        if path.exists() {
            return Err(Error::WouldOverwrite { path });
        }
    }
    for (rel, text) in DEFAULT_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("create directory", parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| Error::io("write", &path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_pipeline_is_valid() {
        let p = Pipeline::built_in().unwrap();
        assert_eq!(p.spec.pipeline, "default");
        let events = &p.sources()[0];
        assert_eq!(events.name, "events");
        let names: Vec<&str> = events.columns.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(
            names,
            ["event_id", "user_id", "event_time", "region", "sku", "amount"]
        );
        let marts: Vec<&str> = p.spec.marts.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(marts, ["top_users", "daily_region_revenue"]);
        assert_eq!(p.exports_of("top_users").csv, ["top_users.csv"]);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "sources:\n  - name: events\n    columns: {id: text}\nstaging:\n  - name: ev\n    sql: x.sql\nmarts:\n  - name: m\n    from: nope\n    aggregate: {n: count()}\n    sort: [n sideways]\nexports:\n  - mart: other\n    csv: a.csv\n";
        let Err(Error::Config { errors }) =
            Pipeline::parse("p.yaml", text, Some(PathBuf::from("/nonexistent")))
        else {
            panic!("expected config errors")
        };
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 1, "{shown:#?}");
        assert!(
            shown[0].starts_with("p.yaml:11: `marts[0].sort[0]`: "),
            "{shown:#?}"
        );

        let text = text.replace("n sideways", "n desc");
        let Err(Error::Config { errors }) =
            Pipeline::parse("p.yaml", &text, Some(PathBuf::from("/nonexistent")))
        else {
            panic!("expected config errors")
        };
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "p.yaml:5: `staging[0].name`: no source named `ev`; sources: events (set `source`)",
                "p.yaml:6: `staging[0].sql`: cannot read `/nonexistent/x.sql`: No such file or directory (os error 2)",
                "p.yaml:9: `marts[0].from`: no staging model or mart named `nope`; models: ev; marts: m",
                "p.yaml:13: `exports[0].mart`: no mart named `other`; marts: m",
            ]
        );
    }
}
