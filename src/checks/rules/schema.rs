//! `schema`: required columns and their types, decided from the catalog
//! without a query. A missing column or a wrong type fails; `new_columns`
//! says what a column `required` does not list does.

use super::{Columns, Failing, Measure, Plan, Problem, Sql, Verdict};
use crate::checks::engine::Status;
use crate::checks::spec::{CheckSpec, NewColumns};

#[derive(Debug, Clone)]
pub(crate) struct Schema {
    /// Column → DuckDB type, or `any`.
    pub required: Vec<(String, String)>,
    pub new_columns: NewColumns,
}

pub(super) fn build(s: &CheckSpec) -> Result<Schema, Vec<Problem>> {
    let required = s.required.clone().ok_or_else(|| {
        vec![(
            "required",
            "a schema check needs `required`: column -> type".to_string(),
        )]
    })?;
    Ok(Schema {
        required: required.into_iter().collect(),
        new_columns: s.new_columns.unwrap_or_default(),
    })
}

impl Schema {
    fn verdict(&self, columns: &Columns) -> Verdict {
        let norm = |t: &str| t.to_ascii_uppercase().replace(' ', "");
        let mut hard = Vec::new();
        for (name, want) in &self.required {
            match columns.get(name) {
                None => hard.push(format!("missing `{name}`")),
                Some(got) if !want.eq_ignore_ascii_case("any") && norm(got) != norm(want) => {
                    hard.push(format!("`{name}` is {got}, expected {want}"))
                }
                Some(_) => {}
            }
        }
        let new: Vec<String> = columns
            .keys()
            .filter(|k| !self.required.iter().any(|(r, _)| r == *k))
            .map(|k| format!("new column `{k}`"))
            .collect();
        let (status, counted_new) = match (hard.is_empty(), self.new_columns, new.is_empty()) {
            (false, ..) => (Status::Fail, self.new_columns != NewColumns::Ignore),
            (true, NewColumns::Ignore, _) | (true, _, true) => (Status::Pass, false),
            (true, NewColumns::Warn, false) => (Status::Warn, true),
            (true, NewColumns::Fail, false) => (Status::Fail, true),
        };
        let mut problems = hard;
        if counted_new {
            problems.extend(new);
        }
        Verdict {
            status,
            observed: problems.len() as f64,
            threshold: format!("new columns: {}", self.new_columns.as_str()),
            message: (!problems.is_empty()).then(|| problems.join("; ")),
        }
    }
}

impl Measure for Schema {
    /// Required columns are what it checks, not what it needs to run.
    fn columns(&self) -> Vec<&str> {
        Vec::new()
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    fn plan(&self, _: &Sql, columns: &Columns) -> Plan {
        Plan::Decided(self.verdict(columns))
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Nothing
    }

    fn reads(&self, observed: f64, _: Option<f64>) -> String {
        format!("{} problems", observed as u64)
    }

    fn counts_failing_rows(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules::test_support::spec;

    fn columns(pairs: &[(&str, &str)]) -> Columns {
        pairs
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn missing_and_mistyped_columns_fail_new_ones_follow_the_policy() {
        let rule = build(&spec(
            "kind: schema, required: {id: VARCHAR, amount: 'DECIMAL(18, 2)', x: any}, new_columns: warn",
        ))
        .unwrap();
        let ok = rule.verdict(&columns(&[
            ("id", "VARCHAR"),
            ("amount", "DECIMAL(18,2)"),
            ("x", "DATE"),
        ]));
        assert_eq!((ok.status, ok.observed, ok.message), (Status::Pass, 0.0, None));
        let new = rule.verdict(&columns(&[
            ("id", "varchar"),
            ("amount", "DECIMAL(18,2)"),
            ("x", "INT"),
            ("y", "INT"),
        ]));
        assert_eq!(
            (new.status, new.message.as_deref()),
            (Status::Warn, Some("new column `y`"))
        );
        let bad = rule.verdict(&columns(&[("id", "BIGINT"), ("y", "INT")]));
        assert_eq!(bad.status, Status::Fail);
        assert_eq!(
            bad.message.as_deref(),
            Some("missing `amount`; `id` is BIGINT, expected VARCHAR; missing `x`; new column `y`")
        );
        assert_eq!(bad.threshold, "new columns: warn");
    }

    #[test]
    fn new_columns_can_fail_or_be_ignored() {
        let strict = build(&spec("kind: schema, required: {id: any}, new_columns: fail")).unwrap();
        assert_eq!(
            strict.verdict(&columns(&[("id", "INT"), ("y", "INT")])).status,
            Status::Fail
        );
        let lax = build(&spec("kind: schema, required: {id: any}, new_columns: ignore")).unwrap();
        let v = lax.verdict(&columns(&[("id", "INT"), ("y", "INT")]));
        assert_eq!((v.status, v.observed), (Status::Pass, 0.0));
    }
}
