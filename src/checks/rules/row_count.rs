//! `row_count`: the rows in the table (within the filter); tiers are counts.

use super::{Columns, Failing, Measure, Plan, Sql};

#[derive(Debug, Clone)]
pub(crate) struct RowCount;

impl Measure for RowCount {
    fn columns(&self) -> Vec<&str> {
        Vec::new()
    }

    fn other_tables(&self) -> Vec<(&str, Vec<&str>)> {
        Vec::new()
    }

    fn plan(&self, sql: &Sql, _: &Columns) -> Plan {
        Plan::Aggregates(vec![sql.count_where("TRUE")])
    }

    fn failing(&self, _: &Sql) -> Failing {
        Failing::Nothing
    }

    fn reads(&self, observed: f64, _: Option<f64>) -> String {
        format!("{} rows", observed as u64)
    }

    fn counts_failing_rows(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::rules::test_support::sql;

    #[test]
    fn counts_the_rows_in_scope() {
        let plan = RowCount.plan(&sql(Some("region = 'eu'")), &Columns::new());
        assert_eq!(
            plan,
            Plan::Aggregates(vec![
                "CAST(count(*) FILTER (WHERE (region = 'eu') AND TRUE) AS DOUBLE)".into()
            ])
        );
        assert_eq!(RowCount.reads(9.0, None), "9 rows");
        assert_eq!(RowCount.failing(&sql(None)), Failing::Nothing);
    }
}
