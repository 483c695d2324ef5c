//! Incremental sources: a cursor column whose largest value the last
//! published run saw. A run reads from that value (less a `lag`) on, drops
//! older records with a count, and records the cursor it reached; the
//! cursor counts only once its run is published, in the same SQLite
//! transaction as the marts (`_sluice_run_cursors`), so a failed gate, a
//! crash or a kill leaves it where it was and the next run reads the same
//! records again.

use std::time::Duration;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::ColumnType;

/// Read only what is new since the last published run: `files` for a
/// landing directory that only grows, or a cursor for an API.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum Incremental {
    /// `files`: skip the files a published run read (by path and SHA-256);
    /// a file that changed since stops the run.
    Files(FilesOnly),
    /// `{files: {changed: read}}`: the same, and a changed file is read again.
    FilesWith {
        files: FilesSpec,
    },
    Cursor(IncrementalSpec),
}

impl Incremental {
    /// What a file read before and changed since does, for `files`.
    pub(crate) fn files(&self) -> Option<Changed> {
        match self {
            Incremental::Files(_) => Some(Changed::Fail),
            Incremental::FilesWith { files } => Some(files.changed),
            Incremental::Cursor(_) => None,
        }
    }

    pub(crate) fn cursor(&self) -> Option<&IncrementalSpec> {
        match self {
            Incremental::Cursor(spec) => Some(spec),
            _ => None,
        }
    }
}

/// The word `files`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FilesOnly {
    Files,
}

/// How a landing directory that only grows is read.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilesSpec {
    /// A file a published run read whose bytes changed since: `fail` (stop
    /// the run, exit 2) or `read` it again. Default: `fail`.
    #[serde(default)]
    pub changed: Changed,
}

/// What a changed file does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Changed {
    #[default]
    Fail,
    Read,
}

/// A cursor: read what is new since the last published run.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncrementalSpec {
    /// A declared `timestamp` or `integer` column that grows as records
    /// change (`updated_at`).
    #[schemars(regex(pattern = r"^[a-z_][a-z0-9_]*$"))]
    pub cursor: String,
    /// Where the first run (and `--full-refresh`) starts: older records are
    /// dropped. Default: none, everything.
    pub initial: Option<String>,
    /// How far before the cursor each run reads again, for records that
    /// change late (`1h`; timestamp cursors). Records read again replace
    /// their earlier versions in a `merge` model. Default: `0s`.
    pub lag: Option<String>,
    /// A query parameter that asks the API for records from the cursor
    /// (less the lag) on, such as `since`: RFC 3339, or the integer.
    pub param: Option<String>,
    /// The API lists records newest first by the cursor (GitHub's
    /// `sort=updated&direction=desc`): the fetch stops after the first page
    /// that reaches an older record.
    #[serde(default)]
    pub newest_first: bool,
}

/// A cursor's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum CursorValue {
    Time(DateTime<Utc>),
    Int(i64),
}

impl CursorValue {
    /// A value of a column of type `ty` as the source gives it: RFC 3339 for
    /// a timestamp (a space for `T` and a missing offset, UTC, accepted).
    pub(crate) fn parse(text: &str, ty: ColumnType) -> Option<CursorValue> {
        let text = text.trim();
        match ty {
            ColumnType::Integer => text.parse().ok().map(CursorValue::Int),
            _ => DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .or_else(|_| {
                    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
                        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
                        .map(|t| t.and_utc())
                })
                .ok()
                .map(CursorValue::Time),
        }
    }

    /// As recorded and sent: RFC 3339 UTC to the microsecond, or the integer.
    pub(crate) fn text(&self) -> String {
        match self {
            CursorValue::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            CursorValue::Int(i) => i.to_string(),
        }
    }

    /// Seconds since the Unix epoch, for the cursor metric.
    pub(crate) fn seconds(&self) -> Option<f64> {
        match self {
            CursorValue::Time(t) => Some(t.timestamp_micros() as f64 / 1e6),
            CursorValue::Int(_) => None,
        }
    }

    fn minus(self, lag: Duration) -> CursorValue {
        match self {
            CursorValue::Time(t) => CursorValue::Time(
                chrono::Duration::from_std(lag)
                    .ok()
                    .and_then(|lag| t.checked_sub_signed(lag))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            ),
            other => other,
        }
    }
}

/// A source's cursor in a run: where it reads from and what it reached.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// The cursor column and its type.
    pub column: String,
    pub ty: ColumnType,
    /// The last published run's value (`None`: no run yet, or a full refresh).
    pub before: Option<CursorValue>,
    /// Records below this are dropped: `before - lag`, else `initial`.
    pub floor: Option<CursorValue>,
    pub param: Option<String>,
    pub newest_first: bool,
    /// The largest value among the records kept.
    pub after: Option<CursorValue>,
    /// Records dropped as older than the floor.
    pub older: u64,
}

impl Cursor {
    /// The cursor of a source whose column `spec.cursor` has type `ty`,
    /// from the value the last published run recorded.
    pub(crate) fn new(spec: &IncrementalSpec, ty: ColumnType, last: Option<&str>) -> Cursor {
        let before = last.and_then(|text| CursorValue::parse(text, ty));
        let lag = spec
            .lag
            .as_deref()
            .and_then(|l| humantime::parse_duration(l.trim()).ok())
            .unwrap_or_default();
        let initial = spec.initial.as_deref().and_then(|t| CursorValue::parse(t, ty));
        Cursor {
            column: spec.cursor.clone(),
            ty,
            before,
            floor: before.map(|b| b.minus(lag)).or(initial),
            param: spec.param.clone(),
            newest_first: spec.newest_first,
            after: before,
            older: 0,
        }
    }

    /// Whether a record with this cursor text is kept; a kept one may move
    /// the cursor. A record without a readable cursor is kept for staging to
    /// judge, and moves nothing.
    pub(crate) fn keep(&mut self, text: Option<&str>) -> bool {
        let Some(value) = text.and_then(|t| CursorValue::parse(t, self.ty)) else {
            return true;
        };
        if self.floor.is_some_and(|floor| value < floor) {
            self.older += 1;
            return false;
        }
        self.after = self.after.max(Some(value));
        true
    }

    /// The query parameter asking the API for records from the floor on.
    pub(crate) fn query(&self) -> Option<(String, String)> {
        Some((self.param.clone()?, self.floor?.text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(lag: &str) -> IncrementalSpec {
        IncrementalSpec {
            cursor: "updated_at".into(),
            initial: Some("2026-01-01T00:00:00Z".into()),
            lag: Some(lag.into()),
            param: Some("since".into()),
            newest_first: true,
        }
    }

    #[test]
    fn the_floor_is_the_last_cursor_less_the_lag_else_the_initial_value() {
        let first = Cursor::new(&spec("1h"), ColumnType::Timestamp, None);
        assert_eq!(
            first.query(),
            Some(("since".into(), "2026-01-01T00:00:00Z".into()))
        );
        let mut next = Cursor::new(&spec("1h"), ColumnType::Timestamp, Some("2026-11-19T10:00:00Z"));
        assert_eq!(next.query().unwrap().1, "2026-11-19T09:00:00Z");
        assert!(next.keep(Some("2026-11-19T09:30:00+00:00")));
        assert!(!next.keep(Some("2026-11-19T08:59:59Z")));
        assert!(next.keep(Some("2026-11-20 10:00:00")));
        assert!(next.keep(Some("not a time")));
        assert!(next.keep(None));
        assert_eq!(next.older, 1);
        assert_eq!(next.after.unwrap().text(), "2026-11-20T10:00:00Z");
    }

    #[test]
    fn integer_cursors_compare_as_numbers() {
        let spec = IncrementalSpec {
            cursor: "id".into(),
            initial: None,
            lag: None,
            param: None,
            newest_first: false,
        };
        let mut c = Cursor::new(&spec, ColumnType::Integer, Some("9"));
        assert!(!c.keep(Some("8")));
        assert!(c.keep(Some("10")));
        assert_eq!(c.after, Some(CursorValue::Int(10)));
        assert_eq!(c.query(), None);
    }
}
