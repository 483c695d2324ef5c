//! A source's schema contract: what a change in the data does as it lands,
//! with dlt's names. A field no column declares (`new_columns`), a declared
//! column a file or record lacks (`missing_columns`), and a value that does
//! not read as its column's type (`data_type`) each `evolve` (land what can
//! be landed and say so), `freeze` (stop the run, naming the field),
//! `discard_row` (quarantine the row, with the reason) or `discard_value`
//! (land the row without the value). What happened is counted per run.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{ColumnType, NewColumns};

/// What a change in the data does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Action {
    Evolve,
    Freeze,
    DiscardRow,
    DiscardValue,
}

impl Action {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Action::Evolve => "evolve",
            Action::Freeze => "freeze",
            Action::DiscardRow => "discard_row",
            Action::DiscardValue => "discard_value",
        }
    }
}

/// `schema_contract` in `sluice.yaml`: one action for every change, or one each.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ContractSpec {
    All(Action),
    Each(ContractFacets),
}

/// One action per kind of change; a kind left out keeps its default.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContractFacets {
    /// A field no column declares. Default: `evolve` (a warning names it;
    /// an HTTP source keeps it in `_record`).
    pub new_columns: Option<Action>,
    /// A declared column (not `optional`) that a file, or a record, lacks.
    /// Default: `freeze`. `evolve` and `discard_value` land it as null.
    pub missing_columns: Option<Action>,
    /// A value of a typed column (integer, decimal, double, boolean, date,
    /// timestamp) that does not read as its type, in a CSV or NDJSON file.
    /// Default: `evolve` (landed as text; the staging SQL decides).
    pub data_type: Option<Action>,
}

/// The kinds of change, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    NewColumn,
    MissingColumn,
    DataType,
}

impl Change {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Change::NewColumn => "new_column",
            Change::MissingColumn => "missing_column",
            Change::DataType => "data_type",
        }
    }
}

/// A source's contract, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Contract {
    pub new_columns: Action,
    pub missing_columns: Action,
    pub data_type: Action,
}

impl Default for Contract {
    fn default() -> Self {
        Contract {
            new_columns: Action::Evolve,
            missing_columns: Action::Freeze,
            data_type: Action::Evolve,
        }
    }
}

impl Contract {
    /// From `schema_contract`, or the older `new_columns` key (`ignore`,
    /// `warn`, `fail` are `discard_value`, `evolve`, `freeze`).
    pub(crate) fn new(spec: Option<&ContractSpec>, new_columns: Option<NewColumns>) -> Contract {
        let default = Contract::default();
        let legacy = new_columns.map(|n| match n {
            NewColumns::Ignore => Action::DiscardValue,
            NewColumns::Warn => Action::Evolve,
            NewColumns::Fail => Action::Freeze,
        });
        match spec {
            Some(ContractSpec::All(action)) => Contract {
                new_columns: *action,
                missing_columns: *action,
                data_type: *action,
            },
            Some(ContractSpec::Each(f)) => Contract {
                new_columns: f.new_columns.or(legacy).unwrap_or(default.new_columns),
                missing_columns: f.missing_columns.unwrap_or(default.missing_columns),
                data_type: f.data_type.unwrap_or(default.data_type),
            },
            None => Contract {
                new_columns: legacy.unwrap_or(default.new_columns),
                ..default
            },
        }
    }
}

/// What the contract did in a run: rows affected per change, action and
/// the columns involved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Changes(pub BTreeMap<(Change, Action, String), u64>);

impl Changes {
    pub(crate) fn add(&mut self, change: Change, action: Action, columns: &str, rows: u64) {
        if rows > 0 {
            *self.0.entry((change, action, columns.to_string())).or_default() += rows;
        }
    }

    pub(crate) fn extend(&mut self, other: Changes) {
        for ((change, action, columns), rows) in other.0 {
            self.add(change, action, &columns, rows);
        }
    }
}

/// Whether `text` reads as a value of a column of type `ty`, as the
/// staging SQL would cast it (text always does).
pub(crate) fn fits(text: &str, ty: ColumnType) -> bool {
    let t = text.trim();
    match ty {
        ColumnType::Text => true,
        ColumnType::Integer => t.parse::<i64>().is_ok(),
        ColumnType::Decimal => {
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
            !whole.is_empty()
                && !fraction.is_empty()
                && whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
        }
        ColumnType::Double => t.parse::<f64>().is_ok(),
        ColumnType::Boolean => matches!(
            t.to_ascii_lowercase().as_str(),
            "true" | "false" | "t" | "f" | "1" | "0" | "yes" | "no" | "y" | "n"
        ),
        ColumnType::Date => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").is_ok(),
        ColumnType::Timestamp => super::CursorValue::parse(t, ColumnType::Timestamp).is_some(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fit_their_type_as_staging_would_cast_them() {
        let yes = [
            ("12", ColumnType::Integer),
            ("-3", ColumnType::Integer),
            ("12.30", ColumnType::Decimal),
            ("7", ColumnType::Decimal),
            ("1e3", ColumnType::Double),
            ("TRUE", ColumnType::Boolean),
            ("2026-02-28", ColumnType::Date),
            ("2026-11-20T13:05:00Z", ColumnType::Timestamp),
            ("2026-11-20 13:05:00", ColumnType::Timestamp),
            ("anything", ColumnType::Text),
        ];
        for (text, ty) in yes {
            assert!(fits(text, ty), "{text} {ty:?}");
        }
        let no = [
            ("12.5", ColumnType::Integer),
            ("99999999999999999999", ColumnType::Integer),
            ("1.2.3", ColumnType::Decimal),
            ("12.", ColumnType::Decimal),
            ("abc", ColumnType::Double),
            ("maybe", ColumnType::Boolean),
            ("2026-02-30", ColumnType::Date),
            ("yesterday", ColumnType::Timestamp),
        ];
        for (text, ty) in no {
            assert!(!fits(text, ty), "{text} {ty:?}");
        }
    }

    #[test]
    fn the_older_new_columns_key_is_the_same_contract() {
        let fail = Contract::new(None, Some(NewColumns::Fail));
        assert_eq!(fail.new_columns, Action::Freeze);
        assert_eq!(fail.missing_columns, Action::Freeze);
        let all = Contract::new(Some(&ContractSpec::All(Action::DiscardRow)), None);
        assert_eq!(all.data_type, Action::DiscardRow);
        assert_eq!(Contract::new(None, None), Contract::default());
    }
}
