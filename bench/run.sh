#!/usr/bin/env bash
# Benchmark: end-to-end rows/s, seconds per stage and peak RSS of `sluice run`
# on generated data, next to the floor: a bare DuckDB count(*) scan of the
# same CSV (PyPI's duckdb, installed when missing).
#
#   bench/run.sh [ROWS ...]          default: 1000000 10000000
#
# The binary is $SLUICE_BIN, or the release build in $CARGO_TARGET_DIR
# (default ~/.cache/sluice/target). Data goes to a temp directory, removed after.
set -euo pipefail

target=${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}
bin=${SLUICE_BIN:-$target/release/sluice}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
python3 -c 'import duckdb' 2> /dev/null || python3 -m pip install --quiet duckdb
[ $# -gt 0 ] || set -- 1000000 10000000

printf '%-11s %10s %12s %8s %8s %8s %8s %8s %10s %10s %12s\n' \
    rows seconds rows/s ingest stage marts audit publish peak_MiB floor_s floor_peak
for rows in "$@"; do
    work=$(mktemp -d)
    "$bin" generate --rows "$rows" --out "$work/input/events.csv" --end 2026-11-20T00:00:00Z > /dev/null
    /usr/bin/time -f '%e %M' -o "$work/time" "$bin" run --as-of 2026-11-20T00:00:00Z \
        --input "$work/input" --db "$work/agg_result.db" --output-dir "$work/output" \
        --data-dir "$work/data" --no-progress --log-format json > /dev/null 2> "$work/log" || true
    /usr/bin/time -f '%e %M' -o "$work/floor" python3 -c \
        "import duckdb, sys; duckdb.sql(\"SELECT count(*) FROM read_csv('\" + sys.argv[1] + \"', all_varchar = true)\").fetchall()" \
        "$work/input/events.csv"
    python3 - "$rows" "$work" <<'PY'
import json, sys
rows, work = int(sys.argv[1]), sys.argv[2]
secs, peak = open(f"{work}/time").read().split()[-2:]
floor_s, floor_peak = open(f"{work}/floor").read().split()[-2:]
stages = {}
for line in open(f"{work}/log"):
    try:
        event = json.loads(line)
    except ValueError:
        continue
    if "stage" in event and "seconds" in event:
        stages[event["stage"]] = float(event["seconds"])
cols = [stages.get(s, float("nan")) for s in ("ingest", "stage", "marts", "audit", "publish")]
print(f"{rows:<11} {float(secs):>10.2f} {rows / float(secs):>12,.0f} " + " ".join(f"{c:>8.2f}" for c in cols)
      + f" {int(peak) / 1024:>10.0f} {float(floor_s):>10.2f} {int(floor_peak) / 1024:>12.0f}")
PY
    rm -rf "$work"
done
