#!/usr/bin/env bash
# A/B of two sluice binaries on the same generated input: alternating runs
# (the VM's speed drifts, so each round runs both back to back), wall seconds,
# peak RSS and seconds per stage, and whether the two runs' outputs are the
# same to the byte (top_users.csv, the quarantine file, both SQLite marts)
# and give the same check results.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [ROWS] [ROUNDS]    default: 10000000 rows, 3 rounds
#
# The input is generated once, with OLD_BINARY (the data the baseline knows), into a temp directory that
# is removed after; $SLUICE_AB_DEFECTS plants defects in it (`all=0.01`:
# every kind at 1%; the runs then publish despite the failed gate, to
# compare). Needs python3 and sqlite3.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,10p' "$0" >&2; exit 2; }
old=$1 new=$2 rows=${3:-10000000} rounds=${4:-3}
work=$(mktemp -d)
trap '[ -n "${SLUICE_AB_KEEP:-}" ] || rm -rf "$work"' EXIT
defects=${SLUICE_AB_DEFECTS:-}
"$old" generate --rows "$rows" --out "$work/input/events.csv" --end 2026-11-20T00:00:00Z \
    ${defects:+--defects "$defects"} > /dev/null
publish=()
[ -z "$defects" ] || publish=(--publish-on-failure)

stages() {
    python3 - "$1" <<'PY'
import json, sys
seconds = {}
for line in open(sys.argv[1]):
    try:
        fields = json.loads(line)
    except ValueError:
        continue
    if "stage" in fields and "seconds" in fields:
        seconds[fields["stage"]] = round(float(fields["seconds"]), 2)
print(" ".join(f"{k}={v}" for k, v in seconds.items()))
PY
}

for round in $(seq "$rounds"); do
    for which in old new; do
        bin=$old
        [ "$which" = new ] && bin=$new
        w="$work/$which"
        rm -rf "$w" && mkdir -p "$w"
        # In the run's own directory: each binary runs its built-in
        # pipeline and checks, not the ones of the directory it is called from.
        (cd "$w" && /usr/bin/time -f "%e %M" -o "$w/time" "$bin" run --as-of 2026-11-20T00:00:00Z \
            --input "$work/input" --db "$w/agg_result.db" --output-dir "$w/output" \
            --data-dir "$w/data" --no-progress --log-format json ${publish[@]+"${publish[@]}"} \
            > "$w/stdout" 2> "$w/log") || true
        read -r wall rss < <(tail -n 1 "$w/time")
        echo "round $round $which: ${wall} s, peak ${rss} KiB, $(stages "$w/log")"
    done
    for f in output/top_users.csv output/quarantine/events.csv; do
        cmp -s "$work/old/$f" "$work/new/$f" && echo "  same $f" || echo "  DIFFERENT $f"
    done
    for t in top_users daily_region_revenue; do
        a=$(sqlite3 "$work/old/agg_result.db" "SELECT * FROM $t" | md5sum)
        b=$(sqlite3 "$work/new/agg_result.db" "SELECT * FROM $t" | md5sum)
        [ "$a" = "$b" ] && echo "  same $t" || echo "  DIFFERENT $t"
    done
    python3 - "$work/old/output/check_results.json" "$work/new/output/check_results.json" <<'PY'
import json, sys
def key(path):
    return [(c["name"], c["status"], c["observed"], c["observed_pct"], c["failed_rows"], c["threshold"], c["message"])
            for c in json.load(open(path))["checks"]]
print("  checks", "same" if key(sys.argv[1]) == key(sys.argv[2]) else "DIFFERENT")
PY
done
