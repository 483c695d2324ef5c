"""The job sluice's default pipeline does, glued together in Python the way a
competent data engineer would write it: DuckDB (its parallel CSV reader and
its own short staging SQL, no memory limit) -> Arrow -> Polars (marts) ->
sqlite3 and a CSV. It is the baseline sluice must beat in bench/run.sh, so it
is meant to be what a user would really write: no strawman, and none of the
work sluice does for guarantees a glue script does not give.

    python3 bench/python_stack.py INPUT_CSV WORKDIR --as-of 2026-11-20T00:00:00Z [--lookback-days 30]

Writes WORKDIR/data/staging/events.parquet, WORKDIR/output/quarantine/events.csv,
WORKDIR/agg_result.db and WORKDIR/output/top_users.csv, and prints one JSON
line with row counts and the seconds of each stage.

What it leaves out, as a glue script does: the checks and the gate, the raw
layer (rows as landed), the run history, metrics, a memory bound (DuckDB's
default: 80% of RAM; the whole input is held in memory), and sluice's
parsing rules. It parses with DuckDB's casts, which accept more than the
contract does (a timestamp without an offset, an amount with three decimals
rounded), so on clean input its marts equal sluice's to the byte and on
defective input its quarantine is smaller. Quarantined rows carry a reason
but no line number.

Needs `python3 -m pip install duckdb polars pyarrow`.
"""

import argparse
import json
import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl

# One pass over the CSV: every column as text (a bad value must not abort the
# read), ragged lines set aside by the reader, the typed values beside them.
PARSE = """
CREATE TABLE parsed AS
SELECT *,
    CASE
        WHEN nullif(trim(event_id), '') IS NULL THEN 'missing_event_id'
        WHEN nullif(trim(event_time), '') IS NULL THEN 'missing_event_time'
        WHEN ts IS NULL THEN 'bad_event_time'
        WHEN nullif(trim(user_id), '') IS NULL THEN 'missing_user_id'
        WHEN uid IS NULL THEN 'bad_user_id'
        WHEN nullif(trim(amount), '') IS NULL THEN 'missing_amount'
        WHEN amt IS NULL THEN 'bad_amount'
    END AS reason
FROM (
    SELECT *,
        try_cast(trim(event_time) AS TIMESTAMPTZ)::TIMESTAMP AS ts,
        try_cast(trim(user_id) AS BIGINT) AS uid,
        try_cast(trim(amount) AS DECIMAL(18, 2)) AS amt
    FROM read_csv($file, all_varchar = true, header = true, store_rejects = true)
)
"""

STAGE = """
CREATE TABLE events AS
SELECT event_id, uid AS user_id, ts AS event_time, nullif(lower(trim(region)), '') AS region, sku,
       amt AS amount, CAST(amt * 100 AS BIGINT) AS amount_cents
FROM parsed WHERE reason IS NULL
QUALIFY row_number() OVER (
    PARTITION BY event_id
    ORDER BY ts DESC, amt DESC, uid, nullif(lower(trim(region)), '') NULLS LAST, sku NULLS LAST) = 1
"""

QUARANTINE = """
SELECT event_id, user_id, event_time, region, sku, amount, reason FROM parsed WHERE reason IS NOT NULL
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, 'malformed_row: ' || any_value(csv_line)
FROM reject_errors GROUP BY line
"""


def stage(con, input_csv, staging_parquet, quarantine_csv):
    con.execute(PARSE, {"file": input_csv})
    con.execute(STAGE)
    staging_parquet.parent.mkdir(parents=True, exist_ok=True)
    quarantine_csv.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY events TO '{staging_parquet}' (FORMAT parquet)")
    con.execute(f"COPY ({QUARANTINE}) TO '{quarantine_csv}' (FORMAT csv, HEADER true)")
    rows = con.execute("SELECT count(*) FROM parsed").fetchall()[0][0]
    con.execute("DROP TABLE parsed")
    return rows, con.execute("SELECT count(*) FROM events").fetchall()[0][0]


def marts(con, as_of, lookback_days):
    """The window and the columns the marts need are cut in DuckDB; the rest
    is Polars, lazily, with both marts collected over one frame."""
    events = con.sql(
        """SELECT user_id, event_time, region, amount_cents FROM events
        WHERE event_time > $start AND event_time <= $as_of""",
        params={"start": as_of - timedelta(days=lookback_days), "as_of": as_of},
    ).pl().lazy()
    top_users = (
        events.group_by("user_id")
        .agg(
            total_amount=pl.col("amount_cents").sum(),
            events=pl.len(),
            first_seen=pl.col("event_time").min(),
            last_seen=pl.col("event_time").max(),
        )
        .sort(["total_amount", "user_id"], descending=[True, False])
        .head(100)
        .with_row_index("rank", offset=1)
    )
    daily = (
        events.group_by(day=pl.col("event_time").dt.date(), region=pl.col("region"))
        .agg(
            revenue=pl.col("amount_cents").sum(),
            events=pl.len(),
            unique_users=pl.col("user_id").n_unique(),
        )
        .sort(["day", "region"], nulls_last=True)
    )
    return pl.collect_all([top_users, daily])


def for_publishing(df):
    """Money as REAL rounded to cents, times as ISO-8601 UTC text in seconds,
    days as YYYY-MM-DD (docs/contract.md)."""
    out = []
    for name, dtype in df.schema.items():
        col = pl.col(name)
        if name in ("total_amount", "revenue"):
            col = (col / 100).round(2)
        elif dtype == pl.Datetime:
            col = col.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        out.append(col)
    return df.select(out)


def publish(db_path, csv_path, tables):
    """Both marts replaced in one SQLite transaction, then the CSV through a
    temp file and a rename."""
    sql_types = {pl.Int64: "INTEGER", pl.UInt32: "INTEGER", pl.Float64: "REAL", pl.String: "TEXT"}
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    for name, df in tables.items():
        columns = ", ".join(f'"{c}" {sql_types.get(t, "INTEGER")}' for c, t in df.schema.items())
        db.execute(f'DROP TABLE IF EXISTS "{name}"')
        db.execute(f'CREATE TABLE "{name}" ({columns})')
        db.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * df.width)})', df.iter_rows())
    db.execute("COMMIT")
    db.close()
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_suffix(f".csv.tmp{os.getpid()}")
    tables["top_users"].write_csv(tmp, float_precision=2)
    os.replace(tmp, csv_path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input_csv")
    p.add_argument("workdir", type=Path)
    p.add_argument("--as-of", required=True, help="RFC 3339, e.g. 2026-11-20T00:00:00Z")
    p.add_argument("--lookback-days", type=int, default=30)
    args = p.parse_args()
    as_of = datetime.fromisoformat(args.as_of)  # DuckDB's TIMESTAMPs are naive UTC
    as_of = (as_of.astimezone(timezone.utc) if as_of.tzinfo else as_of).replace(tzinfo=None)
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)

    seconds, start = {}, time.perf_counter()
    lap = [start]

    def done(stage_name):
        now = time.perf_counter()
        seconds[stage_name] = round(now - lap[0], 3)
        lap[0] = now

    con = duckdb.connect()  # in memory
    con.execute("SET TimeZone = 'UTC'; SET preserve_insertion_order = false")
    rows, staged = stage(
        con, args.input_csv, work / "data" / "staging" / "events.parquet", work / "output" / "quarantine" / "events.csv"
    )
    done("stage")
    top_users, daily = marts(con, as_of, args.lookback_days)
    done("marts")
    publish(
        work / "agg_result.db",
        work / "output" / "top_users.csv",
        {"top_users": for_publishing(top_users), "daily_region_revenue": for_publishing(daily)},
    )
    done("publish")
    con.close()
    print(json.dumps({"rows": rows, "staged": staged, "seconds": seconds,
                      "total_seconds": round(time.perf_counter() - start, 3)}))


if __name__ == "__main__":
    main()
