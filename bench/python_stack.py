"""The job sluice's default pipeline does, glued together in Python the way a
data engineer would: DuckDB (CSV reader, staging SQL) -> Arrow -> Polars (marts)
-> sqlite3 and a CSV. It is the baseline sluice must beat in bench/run.sh, so
it is meant to be a fair, competent implementation: neither a strawman nor
tuned beyond what such a script usually is.

    python3 bench/python_stack.py INPUT_CSV WORKDIR --as-of 2026-11-20T00:00:00Z [--lookback-days 30]

Writes WORKDIR/data/raw/events.parquet, WORKDIR/data/staging/events.parquet,
WORKDIR/output/quarantine/events.csv, WORKDIR/agg_result.db and
WORKDIR/output/top_users.csv, and prints one JSON line with row counts and the
seconds of each stage. Staging runs sluice's own sql/staging/events.sql as it
is; the marts follow docs/contract.md. Not done (sluice does them): the
checks/audit gate, the _sluice_* run history, metrics.

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

COLUMNS = ["event_id", "user_id", "event_time", "region", "sku", "amount"]
STAGING_SQL = Path(__file__).resolve().parent.parent / "sql" / "staging" / "events.sql"


def ingest(con, input_csv, raw_parquet):
    """Lands the CSV as text in raw.events. store_rejects makes DuckDB's
    parallel reader skip a ragged row (or one that is not UTF-8) instead of
    aborting, and record it in reject_errors; those rows are added back with no
    fields and the error plus the original line in _malformed, so staging
    quarantines them as malformed_row. force_not_null keeps an empty field as
    '' (as sluice lands it) rather than NULL. _line is the row number + 1 (the
    line number while no field spans lines and no earlier row was rejected);
    rejected rows get their exact line. That needs insertion order preserved
    during this one statement."""
    con.execute("CREATE SCHEMA raw")
    con.execute("SET preserve_insertion_order = true")
    con.execute(
        f"""CREATE TABLE raw.events AS
        SELECT {', '.join(COLUMNS)}, $file AS _source_file,
               row_number() OVER () + 1 AS _line, NULL::VARCHAR AS _malformed
        FROM read_csv($file, all_varchar = true, header = true, store_rejects = true,
                      force_not_null = {COLUMNS!r})""",
        {"file": input_csv},
    )
    con.execute("SET preserve_insertion_order = false")
    # A row can have several rejects (one per missing column): keep its first.
    con.execute(
        f"""INSERT INTO raw.events
        SELECT {', '.join(f'NULL AS {c}' for c in COLUMNS)}, $file, line::BIGINT,
               arg_min(error_message || ': ' || csv_line, column_idx)
        FROM reject_errors GROUP BY line""",
        {"file": input_csv},
    )
    raw_parquet.parent.mkdir(parents=True, exist_ok=True)
    con.execute(
        f"COPY (SELECT *, now()::TIMESTAMP AS _ingested_at FROM raw.events) TO '{raw_parquet}' (FORMAT parquet)"
    )
    return con.execute("SELECT count(*) FROM raw.events").fetchall()[0][0]


def stage(con, staging_parquet, quarantine_csv):
    """sluice's staging SQL, verbatim (DuckDB runs the statements in turn)."""
    con.execute(STAGING_SQL.read_text())
    con.execute("DROP TABLE raw.events")  # free its memory for the marts
    staging_parquet.parent.mkdir(parents=True, exist_ok=True)
    quarantine_csv.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY staging.events TO '{staging_parquet}' (FORMAT parquet)")
    con.execute(
        f"COPY (SELECT * FROM staging.events_quarantine ORDER BY _source_file, _line) "
        f"TO '{quarantine_csv}' (FORMAT csv, HEADER true)"
    )
    return con.execute("SELECT count(*) FROM staging.events").fetchall()[0][0]


def marts(con, as_of, lookback_days):
    """The window and the columns the marts need are cut in DuckDB; the rest
    is Polars, lazily, with both marts collected over one frame."""
    events = con.sql(
        """SELECT user_id, event_time, region, amount_cents FROM staging.events
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
    db.execute("PRAGMA journal_mode = DELETE")
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
    (work / "data").mkdir(parents=True, exist_ok=True)

    seconds, start = {}, time.perf_counter()
    lap = [start]

    def done(stage_name):
        now = time.perf_counter()
        seconds[stage_name] = round(now - lap[0], 3)
        lap[0] = now

    con = duckdb.connect()  # in memory, as sluice's
    con.execute(f"SET memory_limit = '1500MB'; SET temp_directory = '{work / 'data' / '.duckdb_tmp'}'")
    con.execute("SET preserve_insertion_order = false")

    rows = ingest(con, args.input_csv, work / "data" / "raw" / "events.parquet")
    done("ingest")
    staged = stage(con, work / "data" / "staging" / "events.parquet", work / "output" / "quarantine" / "events.csv")
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
