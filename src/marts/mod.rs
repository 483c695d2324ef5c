//! Marts (gold): the declarative marts of `sluice.yaml`, compiled to Polars
//! lazy expressions over staged rows handed over from DuckDB.
//!
//! Only the columns a mart uses and the rows in its window (and `filter`)
//! leave DuckDB. Decimal columns cross as integer minor units (cents for
//! DECIMAL(18,2)): sums stay exact, Polars' Decimal type is avoided, and the
//! publishers format them back with their scale.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use polars::prelude::*;

mod plan;

pub(crate) use plan::{MartPlan, plan, time_zone};

use plan::{Aggregate, Body, Bucket};

use crate::config::Pipeline;
use crate::engine::{Columns, DuckDb, handoff};
use crate::error::{Error, Result};
use crate::sql;

/// One computed mart: a candidate until the gate lets it be published.
#[derive(Debug, Clone)]
pub(crate) struct Mart {
    pub name: String,
    pub frame: DataFrame,
    /// Decimal columns held as integer minor units, with their scale.
    pub money: Vec<(String, u32)>,
}

impl Mart {
    /// The scale of a decimal column (held as minor units), if it is one.
    pub(crate) fn scale(&self, column: &str) -> Option<u32> {
        self.money.iter().find(|(c, _)| c == column).map(|(_, s)| *s)
    }
}

/// The window `as_of - lookback_days < t <= as_of`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
}

impl Window {
    pub(crate) fn start(&self) -> DateTime<Utc> {
        self.as_of - chrono::Duration::days(i64::from(self.lookback_days))
    }
}

/// What crosses from DuckDB for one group of marts: the same model, window
/// and filter share one query.
struct Handoff {
    /// `staging`, or `marts` for a mart that reads a mart.
    schema: &'static str,
    from: String,
    window: Option<(String, Window)>,
    filter: Option<String>,
    /// Decimals as floating point (Polars SQL marts) rather than minor units.
    decimals_as_float: bool,
    columns: Vec<String>,
}

impl Handoff {
    /// The rows of the handoff; with `part`, only those of one hash partition
    /// (`(column, partition, partitions)`) of a column.
    fn query(&self, model: &Columns, part: Option<(&str, u64, u64)>) -> String {
        let select: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let ty = model.iter().find(|(n, _)| n == c).map_or("", |(_, t)| t.as_str());
                let id = sql::ident(c);
                match decimal_scale(ty) {
                    Some(_) if self.decimals_as_float => format!("CAST({id} AS DOUBLE) AS {id}"),
                    // DECIMAL(18, s) * 10^s overflows from 10^(18-2s) on: only
                    // those rows are widened (128-bit arithmetic on every row
                    // cost 0.7-0.9 s of the marts' 4 s at 10M rows).
                    Some(scale) => format!(
                        "CASE WHEN abs({id}) < 1e{} THEN CAST({id} * {f} AS BIGINT) \
                         ELSE CAST(CAST({id} AS DECIMAL(38, {scale})) * {f} AS BIGINT) END AS {id}",
                        18u32.saturating_sub(2 * scale),
                        f = 10i64.pow(scale)
                    ),
                    None => id,
                }
            })
            .collect();
        let mut conditions = Vec::new();
        if let Some((column, window)) = &self.window {
            let id = sql::ident(column);
            conditions.push(format!(
                "{id} > {} AND {id} <= {}",
                sql::timestamp(window.start()),
                sql::timestamp(window.as_of)
            ));
        }
        if let Some(filter) = &self.filter {
            conditions.push(format!("({filter})"));
        }
        if let Some((column, p, n)) = part {
            conditions.push(format!("hash({}) % {n} = {p}", sql::ident(column)));
        }
        format!(
            "SELECT {} FROM {}.{}{}",
            if select.is_empty() {
                "1 AS _row".to_string()
            } else {
                select.join(", ")
            },
            self.schema,
            sql::ident(&self.from),
            if conditions.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conditions.join(" AND "))
            }
        )
    }
}

/// A Polars error on one line, without the plan it dumps after a blank line.
fn polars_message(e: &PolarsError) -> String {
    let text = e.to_string();
    let text = text.split("\n\nResolved plan").next().unwrap_or_default();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What a column read as time needs to be.
const TIME: &str = "a TIMESTAMP or DATE column";
/// What a summed or averaged column needs to be.
const NUMBER: &str = "a number column";
/// What a pivot's column needs to be.
const TEXT: &str = "a text column";

/// Whether a column of DuckDB type `ty` is what `needs` says ([`TIME`], [`NUMBER`] or [`TEXT`]).
fn is_a(needs: &str, ty: &str) -> bool {
    match needs {
        TIME => ty.starts_with("TIMESTAMP") || ty == "DATE",
        TEXT => ty == "VARCHAR",
        _ => {
            decimal_scale(ty).is_some()
                || [
                    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE",
                ]
                .iter()
                .any(|n| ty.ends_with(n))
        }
    }
}

/// The most minor units a DECIMAL(18, s) holds: the largest money total.
const MAX_DECIMAL_18: i64 = 999_999_999_999_999_999;

/// Whether a DuckDB type is an integer type of at most 64 bits.
fn is_integer(duck_type: &str) -> bool {
    ["TINYINT", "SMALLINT", "INTEGER", "BIGINT"]
        .iter()
        .any(|n| duck_type.ends_with(n))
}

/// `DECIMAL(18,2)` → 2.
fn decimal_scale(duck_type: &str) -> Option<u32> {
    let inner = duck_type.strip_prefix("DECIMAL(")?.strip_suffix(')')?;
    inner.split(',').nth(1)?.trim().parse().ok()
}

/// The columns of `<schema>.<table>` and their types.
fn describe(engine: &DuckDb, schema: &str, table: &str) -> Result<Columns> {
    engine
        .describe(&format!("{schema}.{}", sql::ident(table)))
        .map_err(Error::engine(format!("describing {schema}.{table}")))
}

/// Builds every mart of the pipeline over the staged models, in file order,
/// handing over about `pass_rows` rows per pass ([`PASS_ROWS`]).
pub(crate) fn build(
    engine: &DuckDb,
    pipeline: &Pipeline,
    as_of: DateTime<Utc>,
    lookback_days: u32,
    pass_rows: u64,
) -> Result<Vec<Mart>> {
    let mut marts: Vec<Option<Mart>> = pipeline.marts.iter().map(|_| None).collect();
    // Marts that read marts come after them; each mart is handed back to
    // DuckDB as `marts.<name>` once built, for the marts after it and the checks.
    for layer in pipeline.mart_layers() {
        build_layer(
            engine,
            pipeline,
            &layer,
            as_of,
            lookback_days,
            pass_rows,
            &mut marts,
        )?;
        for &i in &layer {
            if let Some(mart) = &marts[i] {
                handoff::register_frame(engine, "marts", &mart.name, &mart.frame, &mart.money)?;
            }
        }
    }
    Ok(marts.into_iter().flatten().collect())
}

/// Builds the marts `layer` names (indices into the pipeline's marts) into `marts`.
fn build_layer(
    engine: &DuckDb,
    pipeline: &Pipeline,
    layer: &[usize],
    as_of: DateTime<Utc>,
    lookback_days: u32,
    pass_rows: u64,
    marts: &mut [Option<Mart>],
) -> Result<()> {
    let mut models: BTreeMap<&str, Columns> = BTreeMap::new();
    for &i in layer {
        let from = pipeline.marts[i].from.as_str();
        if !models.contains_key(from) {
            models.insert(from, describe(engine, schema_of(pipeline, from), from)?);
        }
    }

    let (handoffs, handoff_of) = handoffs(pipeline, layer, &models, as_of, lookback_days)?;
    for (index, h) in handoffs.iter().enumerate() {
        let model = &models[h.from.as_str()];
        let query = h.query(model, None);
        let served: Vec<usize> = handoff_of
            .iter()
            .filter(|(_, h)| *h == index)
            .map(|(m, _)| *m)
            .collect();
        // A filter is the user's SQL: a bad one is theirs to fix, at a mart that has it.
        let bad_filter = |e: Error| match e {
            Error::Engine { source, .. } if h.filter.is_some() => Error::Config {
                errors: vec![pipeline.error(
                    &format!("/marts/{}/filter", served[0]),
                    format!("DuckDB cannot run the filter: {source}"),
                )],
            },
            other => other,
        };
        if h.decimals_as_float {
            // Polars SQL sees the whole model at once.
            let frame = handoff::query_polars(engine, &query).map_err(bad_filter)?;
            for &i in &served {
                let mart = &pipeline.marts[i];
                if let Body::Sql(query) = &mart.body {
                    // In a zone, the parameters are its wall clock, like the rows.
                    let wall = |t| mart.time_zone.as_deref().map_or(t, |zone| wall_time(t, zone));
                    let start = Window { as_of, lookback_days }.start();
                    let query = sql::expand_params(query, wall(as_of), wall(start));
                    marts[i] = Some(sql_mart(pipeline, i, mart, &query, frame.clone().lazy())?);
                }
            }
            continue;
        }
        let mut streamed: Vec<Streamed> = served
            .iter()
            .map(|&i| Streamed::new(&pipeline.marts[i], model))
            .collect();
        let passes = plan_passes(engine, h, model, &streamed, pass_rows).map_err(bad_filter)?;
        for p in 0..passes.count {
            let part = passes.column.as_deref().map(|c| (c, p, passes.count));
            let query = h.query(model, part);
            let mut failed = None;
            handoff::query_polars_chunks(engine, &query, CHUNK_ROWS, &mut |chunk| {
                for (s, &i) in streamed.iter_mut().zip(&served) {
                    if let Err(e) = s.feed(chunk.clone()) {
                        failed = Some(i);
                        return Err(Error::Polars {
                            context: format!("computing mart `{}`", pipeline.marts[i].name),
                            source: e,
                        });
                    }
                }
                Ok(())
            })
            .map_err(|e| match (e, failed) {
                // What the plan cannot resolve is the mart's definition.
                (Error::Polars { source, .. }, Some(i)) if is_plan_error(&source) => {
                    plan_error(pipeline, i, &source)
                }
                (e, _) => bad_filter(e),
            })?;
            if let Some((column, ..)) = part {
                for (s, &i) in streamed.iter_mut().zip(&served) {
                    s.end_pass(column)
                        .map_err(|e| e.into_error(&pipeline.marts[i].name))?;
                }
            }
        }
        for (s, &i) in streamed.into_iter().zip(&served) {
            let mart = &pipeline.marts[i];
            let money = s.money.clone();
            let merged = s.finish().map_err(|e| e.into_error(&mart.name))?;
            let ordered = order(mart, merged).map_err(|e| plan_error(pipeline, i, &e))?;
            marts[i] = Some(collect(pipeline, i, mart, ordered, money)?);
        }
    }
    Ok(())
}

/// A mart (its index) and the handoff that serves it (its index).
type Served = (usize, usize);

/// The schema a mart's `from` is in.
fn schema_of(pipeline: &Pipeline, from: &str) -> &'static str {
    if pipeline.is_mart(from) {
        "marts"
    } else {
        "staging"
    }
}

/// The handoffs the marts need (marts over the same model, window and filter
/// share one) and which one serves each mart, after checking every column a
/// mart names against its model: nothing moves before the plan holds.
fn handoffs(
    pipeline: &Pipeline,
    members: &[usize],
    models: &BTreeMap<&str, Columns>,
    as_of: DateTime<Utc>,
    lookback_days: u32,
) -> Result<(Vec<Handoff>, Vec<Served>)> {
    let mut errors = Vec::new();
    let mut handoffs: Vec<Handoff> = Vec::new();
    let mut handoff_of = Vec::new();
    for &i in members {
        let mart = &pipeline.marts[i];
        let model = &models[mart.from.as_str()];
        let window = mart.lookback.as_ref().map(|(column, days)| {
            (
                column.clone(),
                Window {
                    as_of,
                    lookback_days: days.unwrap_or(lookback_days),
                },
            )
        });
        let mut used = Vec::new();
        // Each column the plan names must exist, and be of a type its use takes.
        let mut need = |pointer: String, what: String, column: &str, takes: Option<&str>| {
            let Some((_, ty)) = model.iter().find(|(c, _)| c == column) else {
                let names: Vec<&str> = model.iter().map(|(c, _)| c.as_str()).collect();
                errors.push(pipeline.error(
                    &pointer,
                    format!(
                        "no column `{column}` in {}.{} (its columns: {})",
                        schema_of(pipeline, &mart.from),
                        mart.from,
                        names.join(", ")
                    ),
                ));
                return;
            };
            if let Some(takes) = takes.filter(|t| !is_a(t, ty)) {
                errors.push(pipeline.error(&pointer, format!("`{what}` takes {takes}; `{column}` is {ty}")));
            }
            if !used.iter().any(|u| u == column) {
                used.push(column.to_string());
            }
        };
        if let Some((column, _)) = &window {
            need(
                format!("/marts/{i}/lookback"),
                "lookback".into(),
                column,
                Some(TIME),
            );
        }
        let outputs = match &mart.body {
            Body::Declarative {
                keys,
                aggregates,
                pivot,
            } => {
                for key in keys {
                    let takes = key.bucket.map(|_| TIME);
                    need(
                        format!("/marts/{i}/{}", key.pointer),
                        key.to_string(),
                        &key.column,
                        takes,
                    );
                }
                for (name, agg) in aggregates {
                    let takes = matches!(agg, Aggregate::Sum(_) | Aggregate::Mean(_)).then_some(NUMBER);
                    if let Some(column) = agg.column() {
                        need(
                            format!("/marts/{i}/aggregate/{name}"),
                            agg.to_string(),
                            column,
                            takes,
                        );
                    }
                }
                if let Some(p) = pivot {
                    need(
                        format!("/marts/{i}/pivot/column"),
                        "pivot".into(),
                        &p.column,
                        Some(TEXT),
                    );
                    let takes =
                        matches!(p.aggregate, Aggregate::Sum(_) | Aggregate::Mean(_)).then_some(NUMBER);
                    if let Some(column) = p.aggregate.column() {
                        need(
                            format!("/marts/{i}/pivot/aggregate"),
                            p.aggregate.to_string(),
                            column,
                            takes,
                        );
                    }
                }
                Some(
                    keys.iter()
                        .map(|k| k.name.clone())
                        .chain(aggregates.iter().map(|(n, _)| n.clone()))
                        .chain(pivot.iter().flat_map(|p| p.values.iter().map(|(_, n)| n.clone())))
                        .collect::<Vec<_>>(),
                )
            }
            Body::Rows { columns } => {
                for (k, column) in columns.iter().enumerate() {
                    need(format!("/marts/{i}/select/{k}"), column.clone(), column, None);
                }
                Some(columns.clone())
            }
            // Polars SQL may use any column.
            Body::Sql(_) => {
                used = model.iter().map(|(c, _)| c.clone()).collect();
                None
            }
        };
        // What sorts and groups the rows must be a column of the mart.
        let named = mart
            .sort
            .iter()
            .enumerate()
            .map(|(k, key)| (format!("sort/{k}"), &key.column))
            .chain(
                mart.limit_per
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (format!("limit_per/{k}"), c)),
            );
        for (pointer, column) in named {
            if let Some(outputs) = outputs.as_ref().filter(|o| !o.contains(column)) {
                errors.push(pipeline.error(
                    &format!("/marts/{i}/{pointer}"),
                    format!(
                        "`{column}` is not a column of the mart (its columns: {})",
                        outputs.join(", ")
                    ),
                ));
            }
        }
        let sql = matches!(mart.body, Body::Sql(_));
        let filter = mart
            .filter
            .as_deref()
            .map(|f| sql::expand_params(f, as_of, Window { as_of, lookback_days }.start()));
        let found = handoffs.iter().position(|h| {
            h.from == mart.from
                && h.filter == filter
                && h.decimals_as_float == sql
                && h.window.as_ref().map(|(c, w)| (c, w.lookback_days))
                    == window.as_ref().map(|(c, w)| (c, w.lookback_days))
        });
        let index = match found {
            Some(h) => h,
            None => {
                handoffs.push(Handoff {
                    schema: schema_of(pipeline, &mart.from),
                    from: mart.from.clone(),
                    window,
                    filter,
                    decimals_as_float: sql,
                    columns: Vec::new(),
                });
                handoffs.len() - 1
            }
        };
        for column in used {
            if !handoffs[index].columns.contains(&column) {
                handoffs[index].columns.push(column);
            }
        }
        handoff_of.push((i, index));
    }
    if !errors.is_empty() {
        return Err(Error::Config { errors });
    }
    Ok((handoffs, handoff_of))
}

/// A Polars plan mart `i` cannot resolve: its definition is at fault (exit 2, at its line).
fn plan_error(pipeline: &Pipeline, i: usize, e: &PolarsError) -> Error {
    Error::Config {
        errors: vec![pipeline.error(&format!("/marts/{i}"), format!("Polars: {}", polars_message(e)))],
    }
}

/// Errors of a plan that does not fit its input's schema.
fn is_plan_error(e: &PolarsError) -> bool {
    matches!(
        e,
        PolarsError::ColumnNotFound(_) | PolarsError::SchemaMismatch(_) | PolarsError::InvalidOperation(_)
    )
}

/// Rows of the staged model aggregated at a time: the handoff streams chunks
/// of this size and each mart keeps only its partial aggregates, so memory
/// follows the number of groups, not of rows. Polars pays per group, and a
/// chunk of a high-cardinality key (`top_users`) is mostly groups of one:
/// at 10M rows (`bench/run.sh`), 2M-row chunks took the marts from 11.7 s
/// to 8.5 s for 133 MiB more peak RSS (1.75 GiB); 4M-row chunks took 7.2 s
/// and 1.87 GiB even without the checks, too near the 2 GiB budget.
pub(crate) const CHUNK_ROWS: usize = 1 << 21;

/// Rows handed over per pass. Exact partial state (the groups of a mart, the
/// distinct values of a `count_distinct`) can grow with the rows; above this,
/// the handoff runs in passes over disjoint hash partitions of one column and
/// each mart lets go of what that column makes final (see [`Streamed::end_pass`]).
pub(crate) const PASS_ROWS: u64 = 1 << 24;

/// Passes a handoff may take, below `pass_rows`, so that each pass arrives
/// as one chunk. A pass holds only its partition's values of the column, so
/// a chunk of it has fewer, larger groups than a chunk of every row, and
/// Polars pays per group: at 10M rows, six passes took the marts from
/// 2.6–3.1 s to 2.5–2.9 s (three alternating runs each). Each pass scans
/// the staged model again: at 100M rows, eight passes of several chunks
/// each took 70–75 s against 69 s for six.
pub(crate) const CHUNK_PASSES: u64 = 8;

/// The column a handoff is split on, and into how many passes.
#[derive(Debug, Clone, PartialEq)]
struct Passes {
    column: Option<String>,
    count: u64,
}

/// The column whose hash partitions free the most state: a plain group key
/// (its groups are final after its pass) or a `count_distinct` column (its
/// values are counted after their pass), the one most marts gain from.
fn partition_column(marts: &[Streamed]) -> Option<String> {
    let mut gains: Vec<(&String, usize)> = Vec::new();
    for mart in marts {
        let mut columns: Vec<&String> = Vec::new();
        for column in mart
            .key_columns
            .iter()
            .chain(mart.distinct.iter().map(|(c, ..)| c))
        {
            if !columns.contains(&column) {
                columns.push(column);
            }
        }
        for column in columns {
            match gains.iter_mut().find(|(c, _)| *c == column) {
                Some((_, n)) => *n += 1,
                None => gains.push((column, 1)),
            }
        }
    }
    // The first of the most gained, in file order.
    let best = gains.iter().map(|(_, n)| *n).max()?;
    gains
        .into_iter()
        .find(|(_, n)| *n == best)
        .map(|(c, _)| c.clone())
}

/// How many passes a handoff takes: one, unless it holds more than
/// `pass_rows` rows and a column can be partitioned to some mart's gain.
fn plan_passes(
    engine: &DuckDb,
    h: &Handoff,
    model: &Columns,
    marts: &[Streamed],
    pass_rows: u64,
) -> Result<Passes> {
    let Some(column) = partition_column(marts) else {
        return Ok(Passes {
            column: None,
            count: 1,
        });
    };
    let query = format!(
        "SELECT count(*), approx_count_distinct({}) FROM ({})",
        sql::ident(&column),
        h.query(model, None)
    );
    let counted = engine
        .rows(&query)
        .map_err(Error::engine(format!("counting the rows of `{query}`")))?;
    let [rows, values] = [0, 1].map(|i| match counted.first().and_then(|row| row.get(i)) {
        Some(crate::engine::Value::Int(n)) => (*n).max(0) as u64,
        _ => 0,
    });
    let count = pass_count(rows, values, pass_rows);
    tracing::debug!(from = %h.from, rows, values, passes = count, column = %column, "handoff passes");
    Ok(Passes {
        column: (count > 1).then_some(column),
        count,
    })
}

/// Passes for `rows` rows whose partition column has about `values`
/// distinct values: enough to hand over at most about `pass_rows` rows each
/// (hash partitions are even, up to the skew of the values), or more if up
/// to [`CHUNK_PASSES`] hand each over as one chunk (7/8 of [`CHUNK_ROWS`],
/// room for that skew); but one when the column has fewer than
/// `pass_rows / 256` values: so few values hold little state and make few
/// groups, and each pass scans the rows again.
fn pass_count(rows: u64, values: u64, pass_rows: u64) -> u64 {
    if values.saturating_mul(256) < pass_rows {
        return 1;
    }
    let bounded = rows.div_ceil(pass_rows.max(1));
    let chunked = rows.div_ceil(CHUNK_ROWS as u64 / 8 * 7);
    if chunked <= CHUNK_PASSES {
        bounded.max(chunked).max(1)
    } else {
        bounded.max(1)
    }
}

/// A declarative mart computed a chunk at a time: each chunk is reduced to
/// partial aggregates per group, merged into the running partials; the final
/// columns are derived from those at the end.
struct Streamed {
    spec: MartPlan,
    keys: Vec<Expr>,
    key_names: Vec<String>,
    /// Plain columns among the keys: partitioned on one, a pass's groups are final.
    key_columns: Vec<String>,
    /// Over staged rows: the partial columns.
    partial: Vec<Expr>,
    /// Over partial rows: the same columns, merged.
    merge: Vec<Expr>,
    /// Over merged rows: the mart's columns.
    finish: Vec<Expr>,
    /// `count_distinct` partials (column, values list, count of earlier passes).
    distinct: Vec<(String, String, String)>,
    /// Integer sums (mart column, i64 partial, f64 partial beside it).
    sums: Vec<(String, String, String)>,
    money: Vec<(String, u32)>,
    /// Partials merged so far, and those waiting to be merged.
    running: Option<DataFrame>,
    pending: Vec<DataFrame>,
    pending_rows: usize,
    /// Partial rows that may wait before the first merge.
    min_merge: usize,
    /// Final rows of earlier passes (sorted and limited), when their groups were final.
    done: Vec<DataFrame>,
}

impl Streamed {
    /// The streamed mart `mart` over a model whose columns have the DuckDB
    /// types `model`.
    fn new(mart: &MartPlan, model: &Columns) -> Self {
        let type_of = |c: Option<&str>| {
            c.and_then(|c| model.iter().find(|(m, _)| m == c))
                .map(|(_, t)| t.as_str())
        };
        let scale_of = |c: Option<&str>| type_of(c).and_then(decimal_scale);
        // Decimals cross as integer minor units: sums of them and of integers
        // are exact, and checked (see `check_sums`).
        let exact = |c: Option<&str>| type_of(c).is_some_and(|t| decimal_scale(t).is_some() || is_integer(t));
        let mut s = Streamed {
            spec: mart.clone(),
            keys: Vec::new(),
            key_names: Vec::new(),
            key_columns: Vec::new(),
            partial: Vec::new(),
            merge: Vec::new(),
            finish: Vec::new(),
            distinct: Vec::new(),
            sums: Vec::new(),
            money: Vec::new(),
            running: None,
            pending: Vec::new(),
            pending_rows: 0,
            min_merge: 1 << 16,
            done: Vec::new(),
        };
        let (keys, aggregates, pivot) = match &mart.body {
            Body::Declarative {
                keys,
                aggregates,
                pivot,
            } => (keys.as_slice(), aggregates.as_slice(), pivot.as_ref()),
            Body::Rows { columns } => {
                // The rows themselves: each chunk is cut to the mart's
                // top rows (see `feed`), so only `limit` rows are held.
                for column in columns {
                    if let Some(scale) = scale_of(Some(column)) {
                        s.money.push((column.clone(), scale));
                    }
                    s.partial.push(col(column.as_str()));
                    s.finish.push(col(column.as_str()));
                }
                (&[][..], &[][..], None)
            }
            Body::Sql(_) => (&[][..], &[][..], None),
        };
        for key in keys {
            let c = col(key.column.as_str());
            let as_time = || c.clone().cast(DataType::Datetime(TimeUnit::Microseconds, None));
            // The wall clock of the mart's time zone: days, months and years
            // are cut there; a DATE has no instant and is taken as it is.
            let zone = mart
                .time_zone
                .as_deref()
                .filter(|_| type_of(Some(&key.column)).is_some_and(|t| t.starts_with("TIMESTAMP")));
            let wall = || match zone {
                Some(zone) => wall_clock(as_time(), zone),
                None => as_time(),
            };
            let expr = match key.bucket {
                None => {
                    if let Some(scale) = scale_of(Some(&key.column)) {
                        s.money.push((key.name.clone(), scale));
                    }
                    s.key_columns.push(key.column.clone());
                    c
                }
                Some(Bucket::Day) => wall().dt().date(),
                // The instant the local hour began: the UTC time less the
                // minutes into the local hour, so a zone 30 minutes off UTC
                // and the repeated hour when clocks go back are both right.
                Some(Bucket::Hour) => match zone {
                    Some(_) => as_time() - (wall() - wall().dt().truncate(lit("1h"))),
                    None => as_time().dt().truncate(lit("1h")),
                },
                Some(Bucket::Month) => wall().dt().truncate(lit("1mo")).dt().date(),
                Some(Bucket::Year) => wall().dt().truncate(lit("1y")).dt().date(),
            };
            s.keys.push(expr.alias(key.name.as_str()));
            s.finish.push(col(key.name.as_str()));
            s.key_names.push(key.name.clone());
        }
        let explode = ExplodeOptions {
            empty_as_null: false,
            keep_nulls: false,
        };
        // A pivot's columns are its aggregate over the rows with each value.
        let pivoted = pivot.into_iter().flat_map(|p| {
            p.values.iter().map(|(value, name)| {
                let only = col(p.column.as_str()).eq(lit(value.as_str()));
                (name, &p.aggregate, Some(only))
            })
        });
        for (name, agg, only) in aggregates.iter().map(|(n, a)| (n, a, None)).chain(pivoted) {
            let column = agg.column();
            let c = match &only {
                Some(only) => when(only.clone())
                    .then(col(column.unwrap_or_default()))
                    .otherwise(lit(NULL)),
                None => col(column.unwrap_or_default()),
            };
            let scale = scale_of(column);
            let (a, b) = (format!("__{name}_a"), format!("__{name}_b"));
            let (pa, pb) = (col(a.as_str()), col(b.as_str()));
            let (partial, merge, finish): (Vec<Expr>, Vec<Expr>, Expr) = match agg {
                Aggregate::CountRows => {
                    let rows = match only {
                        Some(only) => only.cast(DataType::Int64).sum(),
                        None => len().cast(DataType::Int64),
                    };
                    (vec![rows], vec![pa.clone().sum()], pa)
                }
                Aggregate::Count(_) => (vec![c.count().cast(DataType::Int64)], vec![pa.clone().sum()], pa),
                // The distinct values themselves, as a list per group, and
                // how many earlier passes counted (see `end_pass`).
                Aggregate::CountDistinct(column) => {
                    s.distinct.push((column.clone(), a.clone(), b.clone()));
                    (
                        vec![
                            c.drop_nulls().unique().implode(false),
                            lit(0i64).cast(DataType::Int64),
                        ],
                        vec![
                            pa.clone().explode(explode).unique().implode(false),
                            pb.clone().sum(),
                        ],
                        pa.list().len().cast(DataType::Int64) + pb,
                    )
                }
                // A mean is a float: its sum is one too, and cannot overflow.
                Aggregate::Mean(_) => (
                    vec![
                        c.clone().cast(DataType::Float64).sum(),
                        c.count().cast(DataType::Int64),
                    ],
                    vec![pa.clone().sum(), pb.clone().sum()],
                    pa.cast(DataType::Float64)
                        / pb.cast(DataType::Float64)
                        / lit(10f64.powi(scale.unwrap_or(0) as i32)),
                ),
                // An i64 sum wraps on overflow, and is exact whenever the
                // true sum fits (two's complement addition is exact modulo
                // 2^64): the f64 sum beside it tells which (`check_sums`).
                Aggregate::Sum(_) if exact(column) => {
                    if let Some(scale) = scale {
                        s.money.push((name.clone(), scale));
                    }
                    s.sums.push((name.clone(), a.clone(), b.clone()));
                    (
                        vec![
                            c.clone().strict_cast(DataType::Int64).sum(),
                            c.cast(DataType::Float64).sum(),
                        ],
                        vec![pa.clone().sum(), pb.sum()],
                        pa,
                    )
                }
                Aggregate::Sum(_) | Aggregate::Min(_) | Aggregate::Max(_) => {
                    if let Some(scale) = scale {
                        s.money.push((name.clone(), scale));
                    }
                    let combine = |e: Expr| match agg {
                        Aggregate::Sum(_) => e.sum(),
                        Aggregate::Min(_) => e.min(),
                        _ => e.max(),
                    };
                    (vec![combine(c)], vec![combine(pa.clone())], pa)
                }
            };
            for (k, (p, m)) in partial.into_iter().zip(merge).enumerate() {
                let column = if k == 0 { a.as_str() } else { b.as_str() };
                s.partial.push(p.alias(column));
                s.merge.push(m.alias(column));
            }
            s.finish.push(finish.alias(name.as_str()));
        }
        s
    }

    /// The rows of a `select` mart that can still make its top rows: all of
    /// them without a `limit`.
    fn top(&self, rows: LazyFrame) -> PolarsResult<LazyFrame> {
        match self.spec.limit {
            Some(_) => sort_and_limit(&self.spec, rows),
            None => Ok(rows),
        }
    }

    fn reduce(rows: LazyFrame, exprs: &[Expr], keys: Vec<Expr>) -> LazyFrame {
        if keys.is_empty() {
            rows.select(exprs)
        } else {
            rows.group_by(keys).agg(exprs)
        }
    }

    /// Folds one chunk of staged rows into the partials. Partials are merged
    /// once as many rows wait as are merged already, so merging stays linear
    /// in the input however many chunks there are.
    fn feed(&mut self, chunk: DataFrame) -> PolarsResult<()> {
        let partial = match self.spec.body {
            Body::Rows { .. } => self.top(chunk.lazy().select(&self.partial))?,
            _ => Self::reduce(chunk.lazy(), &self.partial, self.keys.clone()),
        }
        .collect()?;
        self.pending_rows += partial.height();
        self.pending.push(partial);
        let merged = self.running.as_ref().map_or(0, DataFrame::height);
        if self.pending_rows >= merged.max(self.min_merge) {
            self.merge()?;
        }
        Ok(())
    }

    fn merge(&mut self) -> PolarsResult<()> {
        let frames: Vec<LazyFrame> = self
            .running
            .take()
            .into_iter()
            .chain(std::mem::take(&mut self.pending))
            .map(IntoLazy::lazy)
            .collect();
        self.pending_rows = 0;
        if frames.is_empty() {
            return Ok(());
        }
        let keys: Vec<Expr> = self.key_names.iter().map(|k| col(k.as_str())).collect();
        let all = concat(frames, UnionArgs::default())?;
        let merged = match self.spec.body {
            Body::Rows { .. } => self.top(all)?,
            _ => Self::reduce(all, &self.merge, keys),
        };
        self.running = Some(merged.collect()?);
        Ok(())
    }

    /// Ends a pass over the rows whose `column` hashes to one partition: no
    /// later pass holds a value of it. Grouped by that column, the pass's
    /// groups are final: they are finished, sorted and limited now. Counting
    /// its distinct values, the values are counted and let go.
    fn end_pass(&mut self, column: &str) -> Result<(), Unfinished> {
        self.merge()?;
        let Some(running) = self.running.take() else {
            return Ok(());
        };
        if self.key_columns.iter().any(|k| k == column) {
            self.check_sums(&running)?;
            let finished = running.lazy().select(self.finish.clone());
            self.done.push(sort_and_limit(&self.spec, finished)?.collect()?);
            return Ok(());
        }
        let mut collapse = Vec::new();
        for (_, a, b) in self.distinct.iter().filter(|(c, ..)| c == column) {
            let (a, b) = (a.as_str(), b.as_str());
            collapse.push((col(b) + col(a).list().len().cast(DataType::Int64)).alias(b));
            collapse.push(col(a).list().head(lit(0)).alias(a));
        }
        self.running = Some(running.lazy().with_columns(collapse).collect()?);
        Ok(())
    }

    /// The mart's columns: the final rows of earlier passes and the merged partials.
    fn finish(mut self) -> Result<LazyFrame, Unfinished> {
        self.merge()?;
        let done = std::mem::take(&mut self.done);
        let mut parts: Vec<LazyFrame> = done.into_iter().map(IntoLazy::lazy).collect();
        if let Some(running) = self.running.take() {
            self.check_sums(&running)?;
            parts.push(running.lazy().select(self.finish));
        }
        Ok(match parts.len() {
            0 => DataFrame::default().lazy(),
            1 => parts.remove(0),
            _ => concat(parts, UnionArgs::default())?,
        })
    }

    /// Fails on a final integer sum that wrapped, or a money total beyond
    /// DECIMAL(18, s) (the type of the amounts, and of the totals the
    /// checks see). The f64 sum beside each differs from an exact sum by
    /// rounding (far below 2^62 for any input that fits in memory), from a
    /// wrapped one by a multiple of 2^64.
    fn check_sums(&self, merged: &DataFrame) -> Result<(), Unfinished> {
        for (name, exact, float) in &self.sums {
            let scale = self.money.iter().find(|(m, _)| m == name).map(|(_, s)| *s);
            let limit = if scale.is_some() { MAX_DECIMAL_18 } else { i64::MAX };
            let exact = merged.column(exact)?.i64()?;
            let float = merged.column(float)?.f64()?;
            let beyond = exact.iter().zip(float.iter()).any(|(e, f)| match (e, f) {
                (Some(e), Some(f)) => (f - e as f64).abs() > 2f64.powi(62) || e.unsigned_abs() > limit as u64,
                _ => false,
            });
            if beyond {
                return Err(Unfinished::Overflow {
                    column: name.clone(),
                    limit: match scale {
                        Some(scale) => crate::format::format_decimal(limit, scale),
                        None => limit.to_string(),
                    },
                });
            }
        }
        Ok(())
    }
}

/// Why a streamed mart could not be finished.
#[derive(Debug)]
enum Unfinished {
    Polars(PolarsError),
    /// A sum beyond `limit`.
    Overflow {
        column: String,
        limit: String,
    },
}

impl From<PolarsError> for Unfinished {
    fn from(e: PolarsError) -> Self {
        Unfinished::Polars(e)
    }
}

impl Unfinished {
    /// The run's error, for mart `mart`.
    fn into_error(self, mart: &str) -> Error {
        match self {
            Unfinished::Polars(source) => Error::Polars {
                context: format!("computing mart `{mart}`"),
                source,
            },
            Unfinished::Overflow { column, limit } => Error::SumOverflow {
                mart: mart.to_string(),
                column,
                limit,
            },
        }
    }
}

/// Sort, limit and rank: the same for declarative and SQL marts.
fn order(mart: &MartPlan, lf: LazyFrame) -> PolarsResult<LazyFrame> {
    let lf = sort_and_limit(mart, lf)?;
    Ok(match &mart.rank {
        Some(rank) if mart.limit_per.is_empty() => lf
            .with_row_index(rank.as_str(), Some(1))
            .with_column(col(rank.as_str()).cast(DataType::Int64)),
        // Numbered within each group, and the first column all the same.
        Some(rank) => lf.select([
            (row_in_group(mart)? + lit(1i64)).alias(rank.as_str()),
            all().as_expr(),
        ]),
        None => lf,
    })
}

/// Each row's place in its `limit_per` group, from 0, in frame order.
fn row_in_group(mart: &MartPlan) -> PolarsResult<Expr> {
    let per: Vec<Expr> = mart.limit_per.iter().map(|c| col(c.as_str())).collect();
    int_range(lit(0i64), len().cast(DataType::Int64), 1, DataType::Int64).over(per)
}

/// A mart's `sort` and `limit` (within `limit_per` groups): also what a pass
/// keeps of its final groups.
fn sort_and_limit(mart: &MartPlan, mut lf: LazyFrame) -> PolarsResult<LazyFrame> {
    if !mart.sort.is_empty() {
        let keys = &mart.sort;
        lf = lf.sort_by_exprs(
            keys.iter().map(|k| col(k.column.as_str())).collect::<Vec<_>>(),
            SortMultipleOptions::new()
                .with_order_descending_multi(keys.iter().map(|k| k.descending))
                .with_nulls_last_multi(keys.iter().map(|k| k.nulls_last))
                .with_maintain_order(true),
        );
    }
    Ok(match mart.limit {
        Some(limit) if mart.limit_per.is_empty() => lf.limit(limit as IdxSize),
        Some(limit) => lf.filter(row_in_group(mart)?.lt(lit(i64::from(limit)))),
        None => lf,
    })
}

/// The final frame of a mart: a plan that cannot resolve is the mart's
/// definition (exit 2, at its line), not the data.
fn collect(
    pipeline: &Pipeline,
    i: usize,
    mart: &MartPlan,
    lf: LazyFrame,
    money: Vec<(String, u32)>,
) -> Result<Mart> {
    if let Err(e) = lf.clone().collect_schema() {
        return Err(plan_error(pipeline, i, &e));
    }
    let frame = lf
        .collect()
        .map_err(Error::polars(format!("computing mart `{}`", mart.name)))?;
    Ok(Mart {
        name: mart.name.clone(),
        frame,
        money,
    })
}

/// UTC instants (naive, as they leave the engine) as the wall clock of `zone`.
fn wall_clock(utc: Expr, zone: &str) -> Expr {
    utc.dt()
        .replace_time_zone(Some(TimeZone::UTC), lit("raise"), NonExistent::Raise)
        .dt()
        .convert_time_zone(zone_of(zone))
        .dt()
        .replace_time_zone(None, lit("raise"), NonExistent::Raise)
}

/// A zone the pipeline's validation accepted (see `plan::time_zone`).
fn zone_of(zone: &str) -> TimeZone {
    TimeZone::opt_try_new(Some(zone))
        .ok()
        .flatten()
        .unwrap_or(TimeZone::UTC)
}

/// `t` as the wall clock of `zone` shows it (as a naive time, held in a
/// `DateTime<Utc>` for the SQL literal it becomes).
fn wall_time(t: DateTime<Utc>, zone: &str) -> DateTime<Utc> {
    match zone.parse::<chrono_tz::Tz>() {
        Ok(tz) => t.with_timezone(&tz).naive_local().and_utc(),
        Err(_) => t,
    }
}

/// A Polars SQL mart over the whole (windowed, filtered) model. With a time
/// zone, its timestamps (and `{as_of}`, `{window_start}`) are that zone's
/// wall clock, so `CAST(t AS DATE)` is the local day (Polars SQL has no
/// zoned literals to compare zoned times with); the times it returns are
/// read as that wall clock and published as UTC.
fn sql_mart(pipeline: &Pipeline, i: usize, mart: &MartPlan, query: &str, rows: LazyFrame) -> Result<Mart> {
    let sql_error = |e: PolarsError| Error::Config {
        errors: vec![pipeline.error(
            &format!("/marts/{i}/sql"),
            format!("Polars SQL: {}", polars_message(&e)),
        )],
    };
    let mut rows = rows;
    if let Some(zone) = &mart.time_zone {
        let times = time_columns(&mut rows).map_err(sql_error)?;
        rows = rows.with_columns(
            times
                .iter()
                .map(|c| wall_clock(col(c.as_str()), zone).alias(c.as_str()))
                .collect::<Vec<_>>(),
        );
    }
    let mut ctx = polars::sql::SQLContext::new();
    ctx.register(&mart.from, rows);
    let mut lf = ctx.execute(query).map_err(sql_error)?;
    if let Some(zone) = &mart.time_zone {
        let times = time_columns(&mut lf).map_err(sql_error)?;
        // A wall-clock time that comes twice (clocks going back) is read as
        // its first; one that never came (clocks going forward) is null.
        lf = lf.with_columns(
            times
                .iter()
                .map(|c| {
                    col(c.as_str())
                        .dt()
                        .replace_time_zone(Some(zone_of(zone)), lit("earliest"), NonExistent::Null)
                        .dt()
                        .convert_time_zone(TimeZone::UTC)
                        .dt()
                        .replace_time_zone(None, lit("raise"), NonExistent::Raise)
                        .alias(c.as_str())
                })
                .collect::<Vec<_>>(),
        );
    }
    let ordered = order(mart, lf).map_err(|e| plan_error(pipeline, i, &e))?;
    collect(pipeline, i, mart, ordered, Vec::new())
}

/// The (naive, UTC or wall-clock) timestamp columns of `lf`.
fn time_columns(lf: &mut LazyFrame) -> PolarsResult<Vec<String>> {
    Ok(lf
        .collect_schema()?
        .iter()
        .filter(|(_, t)| matches!(t, DataType::Datetime(_, None)))
        .map(|(name, _)| name.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose `v` is money with two decimals (cents in the frames).
    fn money_v() -> Columns {
        vec![("v".into(), "DECIMAL(18,2)".into())]
    }

    /// A mart of `sluice.yaml`, as JSON, parsed into its plan.
    fn mart_plan(spec: serde_json::Value) -> MartPlan {
        plan(&serde_json::from_value(spec).unwrap(), None).unwrap()
    }

    /// A sum that wraps around i64 (here to exactly 0), or a money total
    /// beyond DECIMAL(18, 2), is an error; one whose partial sums wrap but
    /// whose total fits is exact.
    #[test]
    fn a_sum_beyond_its_type_is_an_error_never_a_wrapped_value() {
        let spec = mart_plan(serde_json::json!({
            "name": "m", "from": "t", "group_by": ["k"], "aggregate": {"s": "sum(v)"}
        }));
        let sum = |values: Vec<i64>, model: Columns| {
            let mut s = Streamed::new(&spec, &model);
            let k = vec![1i64; values.len()];
            for (k, v) in k.chunks(2).zip(values.chunks(2)) {
                s.feed(df!("k" => k, "v" => v).unwrap()).unwrap();
            }
            s.finish().and_then(|lf| Ok(lf.collect()?))
        };
        let integer = || vec![("k".into(), "BIGINT".into()), ("v".into(), "BIGINT".into())];
        let money = || {
            vec![
                ("k".into(), "BIGINT".into()),
                ("v".into(), "DECIMAL(18,2)".into()),
            ]
        };
        let wraps = vec![1i64 << 62; 4];
        assert!(matches!(
            sum(wraps.clone(), integer()),
            Err(Unfinished::Overflow { .. })
        ));
        let back = vec![i64::MAX, 10, -i64::MAX, -5];
        let total = sum(back, integer()).unwrap();
        assert_eq!(total.column("s").unwrap().i64().unwrap().get(0), Some(5));
        let beyond = vec![999_999_999_999_999_999, 1];
        match sum(beyond, money()) {
            Err(Unfinished::Overflow { column, limit }) => {
                assert_eq!((column.as_str(), limit.as_str()), ("s", "9999999999999999.99"));
            }
            other => panic!("{other:?}"),
        }
        let largest = sum(vec![999_999_999_999_999_998, 1], money()).unwrap();
        assert_eq!(
            largest.column("s").unwrap().i64().unwrap().get(0),
            Some(999_999_999_999_999_999)
        );
    }

    /// A mart fed in many chunks equals the mart fed in one, for every aggregate.
    #[test]
    fn chunks_give_the_same_mart_as_one_frame() {
        let spec = mart_plan(serde_json::json!({
            "name": "m", "from": "t",
            "group_by": {"day": "day(t)", "k": "k"},
            "aggregate": {
                "n": "count()", "nv": "count(v)", "s": "sum(v)", "lo": "min(v)", "hi": "max(v)",
                "avg": "mean(v)", "users": "count_distinct(u)"
            },
            "sort": ["day", "k"]
        }));
        let n = 10_000usize;
        let frame = df!(
            "t" => (0..n).map(|i| ((i * 7919) % 5) as i64 * 86_400_000_000 + i as i64).collect::<Vec<_>>(),
            "k" => (0..n).map(|i| (i % 13 != 0).then(|| ["a", "b", "c"][i % 3])).collect::<Vec<_>>(),
            "v" => (0..n).map(|i| (i % 17 != 0).then(|| ((i * 31) % 1000) as i64 - 200)).collect::<Vec<_>>(),
            "u" => (0..n).map(|i| ((i * 13) % 97) as i64).collect::<Vec<_>>()
        )
        .unwrap()
        .lazy()
        .with_column(col("t").cast(DataType::Datetime(TimeUnit::Microseconds, None)))
        .collect()
        .unwrap();
        let run = |chunk: usize, min_merge: usize| {
            let mut s = Streamed::new(&spec, &money_v());
            s.min_merge = min_merge;
            for start in (0..n).step_by(chunk) {
                s.feed(frame.slice(start as i64, chunk)).unwrap();
            }
            order(&spec, s.finish().unwrap()).unwrap().collect().unwrap()
        };
        let whole = run(n, 1 << 16);
        assert_eq!(whole.height(), 5 * 4);
        // In passes over partitions of the distinct column: its values are
        // counted at each pass's end.
        assert!(whole.equals_missing(&in_passes(&spec, &frame, "u", 7)));
        // Merged after every chunk, and merged as partials pile up.
        for min_merge in [1, 40] {
            let chunked = run(997, min_merge);
            assert!(whole.equals_missing(&chunked), "{whole}\n{chunked}");
        }
        let total: i64 = whole.column("n").unwrap().i64().unwrap().sum().unwrap();
        assert_eq!(total, n as i64);
        // The one-frame result agrees with Polars' own aggregates.
        let direct = frame
            .clone()
            .lazy()
            .group_by([col("t").dt().date().alias("day"), col("k")])
            .agg([
                col("u").n_unique().cast(DataType::Int64).alias("users"),
                col("v").mean().alias("avg"),
            ])
            .sort(["day", "k"], SortMultipleOptions::new().with_nulls_last(true))
            .collect()
            .unwrap();
        assert!(
            whole
                .column("users")
                .unwrap()
                .equals(direct.column("users").unwrap())
        );
        let scaled = direct.column("avg").unwrap().as_materialized_series() / 100.0;
        let avg = whole.column("avg").unwrap().as_materialized_series().clone();
        let diff = (&avg - &scaled).unwrap();
        assert!(
            diff.f64().unwrap().iter().all(|d| d.unwrap().abs() < 1e-9),
            "{avg:?} {scaled:?}"
        );
    }

    /// Feeds `frame` in passes, one per partition of `column` (`value % passes`).
    fn in_passes(spec: &MartPlan, frame: &DataFrame, column: &str, passes: i64) -> DataFrame {
        let mut s = Streamed::new(spec, &money_v());
        s.min_merge = 1;
        for p in 0..passes {
            let part = frame
                .clone()
                .lazy()
                .filter((col(column) % lit(passes)).eq(lit(p)))
                .collect()
                .unwrap();
            for start in (0..part.height()).step_by(301) {
                s.feed(part.slice(start as i64, 301)).unwrap();
            }
            s.end_pass(column).unwrap();
        }
        order(spec, s.finish().unwrap()).unwrap().collect().unwrap()
    }

    /// Grouped by the partition column, each pass's groups are final: sorted,
    /// limited and kept; the mart is the same as in one pass.
    #[test]
    fn passes_over_a_group_key_give_the_same_mart() {
        let spec = mart_plan(serde_json::json!({
            "name": "m", "from": "t",
            "group_by": ["u"],
            "aggregate": {"n": "count()", "s": "sum(v)", "avg": "mean(v)", "ks": "count_distinct(k)"},
            "sort": ["s desc", "u"],
            "limit": 25,
            "rank": "rank"
        }));
        let n = 20_000usize;
        let frame = df!(
            "u" => (0..n).map(|i| ((i * i) % 5003) as i64).collect::<Vec<_>>(),
            "k" => (0..n).map(|i| ["a", "b", "c", "d"][(i / 7) % 4]).collect::<Vec<_>>(),
            "v" => (0..n).map(|i| ((i * 31) % 1000) as i64).collect::<Vec<_>>()
        )
        .unwrap();
        let whole = in_passes(&spec, &frame, "u", 1);
        assert_eq!(whole.height(), 25);
        let rank: Vec<i64> = whole
            .column("rank")
            .unwrap()
            .i64()
            .unwrap()
            .into_no_null_iter()
            .collect();
        assert_eq!(rank, (1..=25).collect::<Vec<_>>());
        for passes in [2, 9] {
            let parted = in_passes(&spec, &frame, "u", passes);
            assert!(whole.equals_missing(&parted), "{whole}\n{parted}");
        }
        // A column that is neither a key nor counted distinct frees nothing,
        // and still gives the same mart.
        assert!(whole.equals_missing(&in_passes(&spec, &frame, "v", 3)));
    }

    #[test]
    fn the_partition_column_is_the_one_most_marts_gain_from() {
        let marts: Vec<crate::config::MartSpec> = serde_json::from_value(serde_json::json!([
            {"name": "a", "from": "t", "group_by": ["region"], "aggregate": {"n": "count()"}},
            {"name": "b", "from": "t", "group_by": ["user_id"], "aggregate": {"n": "count()"}},
            {"name": "c", "from": "t", "group_by": {"day": "day(t)"},
             "aggregate": {"u": "count_distinct(user_id)", "s": "count_distinct(sku)"}},
            {"name": "d", "from": "t", "aggregate": {"n": "count()"}}
        ]))
        .unwrap();
        let marts: Vec<Streamed> = marts
            .iter()
            .map(|m| Streamed::new(&plan(m, None).unwrap(), &Columns::new()))
            .collect();
        assert_eq!(partition_column(&marts), Some("user_id".into()));
        assert_eq!(partition_column(&marts[..1]), Some("region".into()));
        assert_eq!(partition_column(&marts[3..]), None);
    }

    /// The whole path through DuckDB: hash partitions of the staged rows in
    /// passes give the marts of one pass.
    #[test]
    fn marts_built_in_passes_equal_marts_built_at_once() {
        let engine = DuckDb::open(None, None).unwrap();
        engine
            .execute(
                "CREATE SCHEMA staging;
             CREATE TABLE staging.events AS
             SELECT 'e' || i AS event_id, (i * 7919) % 100003 AS user_id,
                    TIMESTAMP '2026-11-19 00:00:00' - to_minutes((i * 37) % (40 * 1440)) AS event_time,
                    ['eu', 'us', NULL][1 + i % 3] AS region, 'sku' || (i % 50) AS sku,
                    CAST(((i * 13) % 10000) / 100 AS DECIMAL(18, 2)) AS amount
             FROM range(300000) t(i);",
            )
            .unwrap();
        let pipeline = Pipeline::built_in().unwrap();
        let as_of = "2026-11-20T00:00:00Z".parse().unwrap();
        let h = Handoff {
            schema: "staging",
            from: "events".into(),
            window: Some((
                "event_time".into(),
                Window {
                    as_of,
                    lookback_days: 30,
                },
            )),
            filter: None,
            decimals_as_float: false,
            columns: vec!["user_id".into()],
        };
        let model = describe(&engine, "staging", "events").unwrap();
        let streamed: Vec<Streamed> = pipeline
            .marts
            .iter()
            .map(|m| Streamed::new(m, &Columns::new()))
            .collect();
        let passes = plan_passes(&engine, &h, &model, &streamed, 40_000).unwrap();
        // 225,000 rows in the window.
        assert_eq!(
            passes,
            Passes {
                column: Some("user_id".into()),
                count: 6
            }
        );
        // Nothing to gain: one pass, and no count.
        let few = plan_passes(&engine, &h, &model, &[], 1).unwrap();
        assert_eq!(
            few,
            Passes {
                column: None,
                count: 1
            }
        );
        let once = build(&engine, &pipeline, as_of, 30, u64::MAX).unwrap();
        let passes = build(&engine, &pipeline, as_of, 30, 40_000).unwrap();
        assert_eq!(once.len(), 2);
        for (a, b) in once.iter().zip(&passes) {
            assert!(a.frame.height() > 50, "{}", a.frame);
            assert!(a.frame.equals_missing(&b.frame), "{}\n{}", a.frame, b.frame);
        }
    }

    #[test]
    fn passes_hand_over_at_most_pass_rows_unless_the_column_has_few_values() {
        assert_eq!(pass_count(225_000, 90_000, 40_000), 6);
        assert_eq!(pass_count(0, 0, 1), 1);
        assert_eq!(pass_count(1_000_000, 500_000, 1 << 24), 1);
        // One chunk per pass when eight passes or fewer do it ...
        assert_eq!(pass_count(10_000_000, 500_000, 1 << 24), 6);
        assert_eq!(pass_count(14_000_000, 500_000, 1 << 24), 8);
        // ... else as many as `pass_rows` needs.
        assert_eq!(pass_count(16_000_000, 500_000, 1 << 24), 1);
        assert_eq!(pass_count(100_000_000, 5_000_000, 1 << 24), 6);
        assert_eq!(pass_count(1_000_000_000, 5_000_000, 1 << 24), 60);
        // Five regions: state is small, and passes would rescan.
        assert_eq!(pass_count(100_000_000, 5, 1 << 24), 1);
        assert_eq!(pass_count(100_000_000, 65_535, 1 << 24), 1);
        assert_eq!(pass_count(100_000_000, 65_536, 1 << 24), 6);
        assert_eq!(pass_count(10_000_000, 65_536, 1 << 26), 1);
    }

    #[test]
    fn types_fit_their_use() {
        assert_eq!(decimal_scale("DECIMAL(18,2)"), Some(2));
        assert_eq!(decimal_scale("BIGINT"), None);
        assert!(is_a(NUMBER, "DECIMAL(18,2)") && is_a(NUMBER, "UBIGINT") && is_a(NUMBER, "DOUBLE"));
        assert!(!is_a(NUMBER, "VARCHAR"));
        assert!(is_a(TIME, "TIMESTAMP_NS") && is_a(TIME, "DATE"));
        assert!(!is_a(TIME, "VARCHAR"));
    }
}
