//! Marts (gold): business aggregates over the staged rows inside the lookback
//! window, computed with Polars' lazy API. Amounts stay integer cents here and
//! are formatted only when published (Polars' Decimal type is avoided).

use chrono::{DateTime, Utc};
use polars::prelude::*;

use crate::error::{Error, Result};

/// Rows of `top_users` kept.
pub const TOP_USERS: IdxSize = 100;

/// One computed mart: a candidate until the gate lets it be published.
#[derive(Debug, Clone)]
pub struct Mart {
    pub name: &'static str,
    pub frame: DataFrame,
    /// Integer-cent columns, published as amounts with two decimals.
    pub money: &'static [&'static str],
}

/// The window `as_of - lookback_days < event_time <= as_of`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub as_of: DateTime<Utc>,
    pub lookback_days: u32,
}

impl Window {
    pub fn start(&self) -> DateTime<Utc> {
        self.as_of - chrono::Duration::days(i64::from(self.lookback_days))
    }
}

fn timestamp(t: DateTime<Utc>) -> Expr {
    lit(t.timestamp_micros()).cast(DataType::Datetime(TimeUnit::Microseconds, None))
}

/// Builds both marts of the default pipeline from the staged events
/// (`user_id`, `event_time`, `region`, `amount_cents`).
pub fn build(staged: DataFrame, window: Window) -> Result<Vec<Mart>> {
    let in_window = staged.lazy().filter(
        col("event_time")
            .gt(timestamp(window.start()))
            .and(col("event_time").lt_eq(timestamp(window.as_of))),
    );

    let top_users = in_window
        .clone()
        .group_by([col("user_id")])
        .agg([
            col("amount_cents").sum().alias("total_amount"),
            len().cast(DataType::Int64).alias("events"),
            col("event_time").min().alias("first_seen"),
            col("event_time").max().alias("last_seen"),
        ])
        .sort_by_exprs(
            [col("total_amount"), col("user_id")],
            SortMultipleOptions::new().with_order_descending_multi([true, false]),
        )
        .limit(TOP_USERS)
        .with_row_index("rank", Some(1))
        .with_column(col("rank").cast(DataType::Int64))
        .collect()
        .map_err(Error::polars("computing top_users"))?;

    let daily = in_window
        .with_column(col("event_time").dt().date().alias("day"))
        .group_by([col("day"), col("region")])
        .agg([
            col("amount_cents").sum().alias("revenue"),
            len().cast(DataType::Int64).alias("events"),
            col("user_id")
                .n_unique()
                .cast(DataType::Int64)
                .alias("unique_users"),
        ])
        .sort_by_exprs(
            [col("day"), col("region")],
            SortMultipleOptions::new().with_nulls_last(true),
        )
        .collect()
        .map_err(Error::polars("computing daily_region_revenue"))?;

    Ok(vec![
        Mart {
            name: "top_users",
            frame: top_users,
            money: &["total_amount"],
        },
        Mart {
            name: "daily_region_revenue",
            frame: daily,
            money: &["revenue"],
        },
    ])
}
