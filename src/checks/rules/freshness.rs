//! `freshness`: `as_of - max(column)` over values at or before `as_of`, in
//! seconds; tiers are durations. No such value measures nothing, which
//! breaches the check's most severe tier.

use super::{Columns, Failing, Measure, Plan, Problem, Sql};
use crate::checks::spec::CheckSpec;
use crate::sql;

#[derive(Debug, Clone)]
pub(crate) struct Freshness {
    pub column: String,
}

pub(super) fn build(s: &CheckSpec) -> Result<Freshness, Vec<Problem>> {
    Ok(Freshness {
        column: super::column(s)?,
    })
}

impl Measure for Freshness {
    fn columns(&self) -> Vec<&str> {
        vec![&self.column]
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    fn plan(&self, s: &Sql, _: &Columns) -> Plan {
        let col = format!("CAST({} AS TIMESTAMP)", sql::ident(&self.column));
        let as_of = sql::timestamp(s.as_of);
        Plan::Aggregates(vec![format!(
            "CAST((epoch_us({as_of}) - epoch_us(max({col}) FILTER (WHERE {} AND {col} <= {as_of}))) / 1e6 AS DOUBLE)",
            s.scope
        )])
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Nothing
    }

    fn reads(&self, observed: f64, _: Option<f64>) -> String {
        humantime::format_duration(std::time::Duration::from_secs(observed.max(0.0) as u64)).to_string()
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
    fn lag_of_the_newest_value_at_or_before_as_of() {
        let rule = build(&spec("kind: freshness, column: event_time, fail: '> 1h'")).unwrap();
        assert_eq!(
            rule.plan(&sql(None), &Columns::new()),
            Plan::Aggregates(vec![
                "CAST((epoch_us(TIMESTAMP '2026-11-20 12:00:00.000000') - epoch_us(max(CAST(\"event_time\" AS TIMESTAMP)) FILTER (WHERE TRUE AND CAST(\"event_time\" AS TIMESTAMP) <= TIMESTAMP '2026-11-20 12:00:00.000000'))) / 1e6 AS DOUBLE)".into()
            ])
        );
        assert_eq!(rule.reads(7200.0, None), "2h");
        assert_eq!(rule.reads(-5.0, None), "0s");
    }
}
