//! The mart language, parsed once: a mart of `sluice.yaml` becomes a typed
//! plan that says what to compute (group keys, aggregates, sort keys, the
//! window), not how. Validation against the staged model and execution
//! (Polars, fed by the engine) read the same plan; another engine could
//! compile it. The JSON Schema's patterns give editors the same shapes.

use std::fmt;

use crate::config::{GroupBy, Lookback, MartSpec};

/// A time bucket a group key truncates its column to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    /// A date.
    Day,
    /// A timestamp at the start of its hour.
    Hour,
    /// The date of the first of the month.
    Month,
    /// The date of the first of January.
    Year,
}

/// One group key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    /// The output column.
    pub name: String,
    /// The staged column it reads.
    pub column: String,
    pub bucket: Option<Bucket>,
    /// Where it is written: `group_by/<index>` or `group_by/<name>`.
    pub pointer: String,
}

/// An aggregate over a group's rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Aggregate {
    /// `count()`: rows.
    CountRows,
    /// `count(col)`: non-null values.
    Count(String),
    CountDistinct(String),
    Sum(String),
    Min(String),
    Max(String),
    Mean(String),
}

/// Values of a text column as columns, each an aggregate over the rows
/// with that value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pivot {
    pub column: String,
    /// Each value and the name of its column.
    pub values: Vec<(String, String)>,
    pub aggregate: Aggregate,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SortKey {
    pub column: String,
    pub descending: bool,
    /// Nulls come last unless the key says `nulls first`.
    pub nulls_last: bool,
}

/// What a mart computes from its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// Group keys (none: one row) and named aggregates, in file order (a
    /// pivot's columns last).
    Declarative {
        keys: Vec<Key>,
        aggregates: Vec<(String, Aggregate)>,
        pivot: Option<Pivot>,
    },
    /// The rows themselves, these columns (with `sort` and `limit`: the top
    /// rows by a sort, no aggregate).
    Rows { columns: Vec<String> },
    /// Polars SQL over the model, the escape hatch.
    Sql(String),
}

/// One mart, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MartPlan {
    pub name: String,
    /// The staging model it reads.
    pub from: String,
    /// A DuckDB SQL condition applied where the rows leave the engine.
    pub filter: Option<String>,
    /// The window column and its own length in days (`None`: the run's).
    pub lookback: Option<(String, Option<u32>)>,
    pub body: Body,
    pub sort: Vec<SortKey>,
    pub limit: Option<u32>,
    /// Mart columns whose groups `limit` and `rank` apply within.
    pub limit_per: Vec<String>,
    /// The name of the row-number column, first after sorting.
    pub rank: Option<String>,
    /// The IANA zone whose wall clock its day, hour, month and year keys
    /// (and a `sql:` mart's timestamps) follow; `None` for UTC.
    pub time_zone: Option<String>,
}

/// `text` if it names a time zone of the IANA database (`Europe/Berlin`;
/// `Etc/GMT-3` for a fixed offset); `None` for UTC, which needs no conversion.
pub(crate) fn time_zone(text: &str) -> Result<Option<String>, String> {
    match text.trim().parse::<chrono_tz::Tz>() {
        Ok(_) if matches!(text.trim(), "UTC" | "Etc/UTC") => Ok(None),
        Ok(_) => Ok(Some(text.trim().to_string())),
        Err(_) => Err(format!(
            "`{text}` is not a time zone: give an IANA name such as `Europe/Berlin`, `America/New_York` or `UTC`"
        )),
    }
}

/// `function(argument)` or a bare word; the argument is `None` for `f()` and `f(*)`.
fn call(text: &str) -> Result<(Option<&str>, Option<&str>), String> {
    let text = text.trim();
    let Some((function, rest)) = text.split_once('(') else {
        return match text.split_whitespace().count() {
            1 => Ok((None, Some(text))),
            _ => Err(format!("`{text}` is not a column name")),
        };
    };
    let argument = rest
        .strip_suffix(')')
        .ok_or_else(|| format!("`{text}` lacks its closing `)`"))?
        .trim();
    Ok((
        Some(function.trim()),
        Some(argument).filter(|a| !a.is_empty() && *a != "*"),
    ))
}

impl Key {
    /// `column`, or `day(column)`, `hour(column)`, `month(column)`, `year(column)`.
    pub(crate) fn parse(name: &str, text: &str, pointer: String) -> Result<Key, String> {
        let (function, column) = call(text)?;
        let column = column.ok_or_else(|| format!("`{}` needs a column", text.trim()))?;
        let bucket = match function {
            None => None,
            Some("day") => Some(Bucket::Day),
            Some("hour") => Some(Bucket::Hour),
            Some("month") => Some(Bucket::Month),
            Some("year") => Some(Bucket::Year),
            Some(other) => {
                return Err(format!(
                    "`{other}` is not a group key function: use `day`, `hour`, `month` or `year`"
                ));
            }
        };
        Ok(Key {
            name: name.to_string(),
            column: column.to_string(),
            bucket,
            pointer,
        })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.bucket {
            None => f.write_str(&self.column),
            Some(b) => {
                let function = match b {
                    Bucket::Day => "day",
                    Bucket::Hour => "hour",
                    Bucket::Month => "month",
                    Bucket::Year => "year",
                };
                write!(f, "{function}({})", self.column)
            }
        }
    }
}

impl Aggregate {
    /// `count()`, `count(*)` or `function(column)` with count, count_distinct,
    /// sum, min, max or mean.
    pub(crate) fn parse(text: &str) -> Result<Aggregate, String> {
        let (function, column) = call(text)?;
        let function = function.ok_or_else(|| {
            format!(
                "`{}` is not an aggregate: write `function(column)`, e.g. `sum({})`",
                text.trim(),
                text.trim()
            )
        })?;
        let needs = |make: fn(String) -> Aggregate| {
            column
                .map(|c| make(c.to_string()))
                .ok_or_else(|| format!("`{function}()` needs a column"))
        };
        match function {
            "count" => Ok(column.map_or(Aggregate::CountRows, |c| Aggregate::Count(c.to_string()))),
            "count_distinct" => needs(Aggregate::CountDistinct),
            "sum" => needs(Aggregate::Sum),
            "min" => needs(Aggregate::Min),
            "max" => needs(Aggregate::Max),
            "mean" => needs(Aggregate::Mean),
            other => Err(format!(
                "`{other}` is not an aggregate: use sum, count, count_distinct, min, max or mean"
            )),
        }
    }

    /// The staged column it reads, if any.
    pub(crate) fn column(&self) -> Option<&str> {
        match self {
            Aggregate::CountRows => None,
            Aggregate::Count(c)
            | Aggregate::CountDistinct(c)
            | Aggregate::Sum(c)
            | Aggregate::Min(c)
            | Aggregate::Max(c)
            | Aggregate::Mean(c) => Some(c),
        }
    }
}

impl fmt::Display for Aggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let function = match self {
            Aggregate::CountRows => return f.write_str("count()"),
            Aggregate::Count(_) => "count",
            Aggregate::CountDistinct(_) => "count_distinct",
            Aggregate::Sum(_) => "sum",
            Aggregate::Min(_) => "min",
            Aggregate::Max(_) => "max",
            Aggregate::Mean(_) => "mean",
        };
        write!(f, "{function}({})", self.column().unwrap_or_default())
    }
}

impl SortKey {
    /// `column`, then optionally `asc`/`desc` and `nulls first`/`nulls last`.
    pub(crate) fn parse(text: &str) -> Result<SortKey, String> {
        let words: Vec<String> = text.split_whitespace().map(str::to_ascii_lowercase).collect();
        let bad = || format!("`{}` is not `column [asc|desc] [nulls first|last]`", text.trim());
        let (column, rest) = words.split_first().ok_or_else(bad)?;
        let (descending, rest) = match rest {
            [dir, rest @ ..] if dir == "desc" => (true, rest),
            [dir, rest @ ..] if dir == "asc" => (false, rest),
            rest => (false, rest),
        };
        let nulls_last = match rest {
            [] => true,
            [n, w] if n == "nulls" && w == "last" => true,
            [n, w] if n == "nulls" && w == "first" => false,
            _ => return Err(bad()),
        };
        // Column names are lower case; the keywords are not case sensitive.
        let column = text
            .split_whitespace()
            .next()
            .map_or_else(|| column.clone(), str::to_string);
        Ok(SortKey {
            column,
            descending,
            nulls_last,
        })
    }
}

/// Parses a mart of `sluice.yaml`, or lists `(JSON Pointer within the mart,
/// problem)` pairs. `zone` is the pipeline's time zone, which the mart's own wins over.
pub(crate) fn plan(spec: &MartSpec, zone: Option<&str>) -> Result<MartPlan, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let time_zone = match &spec.time_zone {
        Some(own) => time_zone(own).unwrap_or_else(|m| {
            problems.push(("time_zone".into(), m));
            None
        }),
        None => zone.map(str::to_string),
    };
    let keys: Vec<Key> = match &spec.group_by {
        None => Vec::new(),
        Some(GroupBy::Columns(columns)) => columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let pointer = format!("group_by/{i}");
                Key::parse(&c.0, &c.0, pointer.clone())
                    .map_err(|m| problems.push((pointer, m)))
                    .ok()
            })
            .collect(),
        Some(GroupBy::Named(named)) => named
            .0
            .iter()
            .filter_map(|(name, e)| {
                let pointer = format!("group_by/{name}");
                Key::parse(name, &e.0, pointer.clone())
                    .map_err(|m| problems.push((pointer, m)))
                    .ok()
            })
            .collect(),
    };
    let aggregates: Vec<(String, Aggregate)> = spec
        .aggregate
        .iter()
        .flat_map(|a| &a.0)
        .filter_map(|(name, a)| match Aggregate::parse(&a.0) {
            Ok(agg) => Some((name.clone(), agg)),
            Err(m) => {
                problems.push((format!("aggregate/{name}"), m));
                None
            }
        })
        .collect();
    let pivot = spec
        .pivot
        .as_ref()
        .and_then(|p| match Aggregate::parse(&p.aggregate.0) {
            Ok(aggregate) => Some(Pivot {
                column: p.column.clone(),
                values: p
                    .values
                    .iter()
                    .map(|v| (v.clone(), format!("{}{v}", p.prefix)))
                    .collect(),
                aggregate,
            }),
            Err(m) => {
                problems.push(("pivot/aggregate".into(), m));
                None
            }
        });
    if let Some(pivot) = &pivot {
        for (k, (_, name)) in pivot.values.iter().enumerate() {
            if aggregates.iter().any(|(n, _)| n == name) || pivot.values[..k].iter().any(|(_, n)| n == name) {
                problems.push((
                    format!("pivot/values/{k}"),
                    format!("`{name}` is already a column of the mart"),
                ));
            }
        }
    }
    let sort: Vec<SortKey> = spec
        .sort
        .iter()
        .enumerate()
        .filter_map(|(i, k)| {
            SortKey::parse(&k.0)
                .map_err(|m| problems.push((format!("sort/{i}"), m)))
                .ok()
        })
        .collect();
    if !spec.limit_per.is_empty() && spec.limit.is_none() && spec.rank.is_none() {
        problems.push((
            "limit_per".into(),
            "`limit_per` applies `limit` or `rank` within groups: give one of them".into(),
        ));
    }
    let bucketed = keys.iter().any(|k| k.bucket.is_some());
    if spec.time_zone.is_some() && !bucketed && spec.sql.is_none() {
        problems.push((
            "time_zone".into(),
            "a time zone applies to `day()`, `hour()`, `month()` and `year()` keys and to `sql:` marts; this mart has none (times are published as UTC)".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(MartPlan {
        name: spec.name.clone(),
        from: spec.from.clone(),
        filter: spec.filter.clone(),
        lookback: spec.lookback.as_ref().map(|l| match l {
            Lookback::Column(c) => (c.clone(), None),
            Lookback::Window { column, days } => (column.clone(), Some(*days)),
        }),
        body: match &spec.sql {
            Some(sql) => Body::Sql(sql.clone()),
            None => match &spec.select {
                Some(columns) => Body::Rows {
                    columns: columns.clone(),
                },
                None => Body::Declarative {
                    keys,
                    aggregates,
                    pivot,
                },
            },
        },
        sort,
        limit: spec.limit,
        limit_per: spec.limit_per.clone(),
        rank: spec.rank.clone(),
        time_zone,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_columns_or_time_buckets() {
        let day = Key::parse("day", " day( event_time )", "group_by/day".into()).unwrap();
        assert_eq!(
            (day.column.as_str(), day.bucket),
            ("event_time", Some(Bucket::Day))
        );
        assert_eq!(day.to_string(), "day(event_time)");
        let plain = Key::parse("region", "region", "group_by/0".into()).unwrap();
        assert_eq!((plain.column.as_str(), plain.bucket), ("region", None));
        assert!(
            Key::parse("w", "week(t)", String::new())
                .unwrap_err()
                .contains("`week`")
        );
        assert!(Key::parse("d", "day()", String::new()).is_err());
        assert!(Key::parse("d", "day(t", String::new()).is_err());
    }

    #[test]
    fn aggregates_name_their_function_and_column() {
        assert_eq!(Aggregate::parse("count()"), Ok(Aggregate::CountRows));
        assert_eq!(Aggregate::parse("count(*)"), Ok(Aggregate::CountRows));
        assert_eq!(
            Aggregate::parse("count(user_id)"),
            Ok(Aggregate::Count("user_id".into()))
        );
        assert_eq!(
            Aggregate::parse(" count_distinct( user_id ) "),
            Ok(Aggregate::CountDistinct("user_id".into()))
        );
        assert_eq!(
            Aggregate::parse("sum(amount)").unwrap().to_string(),
            "sum(amount)"
        );
        assert_eq!(Aggregate::parse("mean(amount)").unwrap().column(), Some("amount"));
        assert!(Aggregate::parse("sum()").unwrap_err().contains("needs a column"));
        assert!(Aggregate::parse("median(x)").unwrap_err().contains("`median`"));
        assert!(Aggregate::parse("amount").is_err());
    }

    #[test]
    fn sort_keys_read_direction_and_nulls() {
        let key = |text: &str| SortKey::parse(text).map(|k| (k.column, k.descending, k.nulls_last));
        assert_eq!(key("total_amount DESC"), Ok(("total_amount".into(), true, true)));
        assert_eq!(key("region nulls first"), Ok(("region".into(), false, false)));
        assert_eq!(key("day asc nulls last"), Ok(("day".into(), false, true)));
        assert!(key("day sideways").is_err());
        assert!(key("").is_err());
    }
}
