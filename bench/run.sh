#!/usr/bin/env bash
# Benchmark: end-to-end rows/s, seconds and peak RSS per stage of `sluice run`
# on generated data, next to the floor (a bare DuckDB count(*) scan of the
# same CSV), DuckDB landing that CSV's every column as text in Parquet (the
# least a run that keeps a raw layer does), and the Python stack a data
# engineer would otherwise glue together for the same job
# (bench/python_stack.py: DuckDB -> Arrow -> Polars -> sqlite3, without the
# checks). PyPI's duckdb, polars and pyarrow are installed when missing.
#
#   bench/run.sh [ROWS ...]          default: 1000000 10000000
#
# The binary is $SLUICE_BIN, or the release build in $CARGO_TARGET_DIR
# (default ~/.cache/sluice/target). Data goes to a temp directory, removed
# after. Extra `sluice run` flags can be given in $SLUICE_BENCH_FLAGS, and
# the lake in $SLUICE_BENCH_LAKE (e.g. `s3://bench/lake`, with the `AWS_*`
# variables set; default: a directory beside the data). The
# Python stack holds every row in memory (2.5 GiB at 10M rows), so it runs
# only up to $SLUICE_BENCH_PYTHON_ROWS rows (default 20000000).
#
# cpu_* is each stage's CPU use: user + system seconds of all sluice's
# threads over the stage's wall seconds (2.00: both cores busy).
#
# Each stage's peak is the largest RSS sampled (every 20 ms) between the log
# lines that end the stage before it and the stage itself; "peak" is the
# kernel's own high-water mark for the whole run.
set -euo pipefail

target=${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}
bin=${SLUICE_BIN:-$target/release/sluice}
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 2; }
python3 -c 'import duckdb, polars, pyarrow' 2> /dev/null ||
    python3 -m pip install --quiet duckdb polars pyarrow
stack=$(dirname "$0")/python_stack.py
[ $# -gt 0 ] || set -- 1000000 10000000

printf '%-11s %8s %10s %7s %7s %7s %7s %7s %8s %8s %8s %8s %6s %6s %6s %6s %8s %8s %8s %8s %8s %8s\n' \
    rows seconds rows/s ingest stage marts audit publish \
    pk_ing pk_stg pk_mrt pk_aud cpu_in cpu_st cpu_mr cpu_au peak_MiB floor_s floor_MiB land_s py_s py_MiB
for rows in "$@"; do
    work=$(mktemp -d)
    "$bin" generate --rows "$rows" --out "$work/input/events.csv" --end 2026-11-20T00:00:00Z > /dev/null
    # shellcheck disable=SC2086 # the extra flags are words
    python3 - "$rows" "$work" "$stack" "$bin" run --as-of 2026-11-20T00:00:00Z \
        --input "$work/input" --db "$work/agg_result.db" --output-dir "$work/output" \
        --data-dir "${SLUICE_BENCH_LAKE:-$work/data}" --no-progress --log-format json ${SLUICE_BENCH_FLAGS:-} <<'PY'
import json, os, resource, subprocess, sys, threading, time

rows, work, stack, command = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
stages = ["ingest", "stage", "marts", "audit", "publish"]
seconds, peaks, current = {}, {}, [0]

def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0

def cpu_seconds(pid):
    """User + system CPU of the process (all its threads) so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None

def read_log(stream):
    for line in stream:
        log.write(line)
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("stage") in stages and "seconds" in event:
            seconds[event["stage"]] = float(event["seconds"])
            current[0] = stages.index(event["stage"]) + 1

start = time.monotonic()
# In the work directory: the binary runs its built-in pipeline and checks,
# not those of the directory the script is called from.
proc = subprocess.Popen(command, cwd=work, stdout=open(f"{work}/summary", "w"), stderr=subprocess.PIPE, text=True)
log = open(f"{work}/log", "w")
reader = threading.Thread(target=read_log, args=(proc.stderr,))
reader.start()
cpu, last_cpu = {}, 0.0
while proc.poll() is None:
    stage = stages[min(current[0], len(stages) - 1)]
    peaks[stage] = max(peaks.get(stage, 0), rss_kib(proc.pid))
    used = cpu_seconds(proc.pid)
    if used is not None:
        cpu[stage] = cpu.get(stage, 0.0) + used - last_cpu
        last_cpu = used
    time.sleep(0.02)
elapsed = time.monotonic() - start
reader.join()
log.close()
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
peak = usage.ru_maxrss
# The CPU after the last sample is the last stage's.
cpu["publish"] = cpu.get("publish", 0.0) + max(0.0, usage.ru_utime + usage.ru_stime - last_cpu)

def timed(*command):
    """Seconds and peak RSS (KiB) of a command, by /usr/bin/time; NaN if it fails."""
    done = subprocess.run(["/usr/bin/time", "-f", "%e %M", *command], capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return float("nan"), 0
    wall, kib = done.stderr.split()[-2:]
    return float(wall), int(kib)

csv = f"{work}/input/events.csv"
floor_s, floor_peak = timed(
    sys.executable, "-c",
    "import duckdb, sys; duckdb.sql(\"SELECT count(*) FROM read_csv('\" + sys.argv[1]"
    " + \"', all_varchar = true)\").fetchall()", csv)
# The least a run that lands the raw layer does: DuckDB reads every column
# as text and writes it to Parquet, nothing else.
land_s, _ = timed(
    sys.executable, "-c",
    "import duckdb, sys; duckdb.sql(\"COPY (SELECT * FROM read_csv('\" + sys.argv[1]"
    " + \"', all_varchar = true)) TO '\" + sys.argv[2] + \"'\")", csv, f"{work}/land.parquet")
# The same job in Python, in a directory of its own.
py_s, py_peak = float("nan"), 0
if rows <= int(os.environ.get("SLUICE_BENCH_PYTHON_ROWS", "20000000")):
    py_s, py_peak = timed(sys.executable, stack, csv, f"{work}/python", "--as-of", "2026-11-20T00:00:00Z")
cols = [f"{seconds.get(s, float('nan')):>7.2f}" for s in stages]
pks = [f"{peaks.get(s, 0) / 1024:>8.0f}" for s in stages[:4]]
# CPU use per stage: user + system seconds over wall seconds (2.00 = both cores).
cpus = [f"{cpu.get(s, 0.0) / seconds[s] if seconds.get(s) else float('nan'):>6.2f}" for s in stages[:4]]
print(f"{rows:<11} {elapsed:>8.2f} {rows / elapsed:>10,.0f} " + " ".join(cols + pks + cpus)
      + f" {peak / 1024:>8.0f} {floor_s:>8.2f} {floor_peak / 1024:>8.0f} {land_s:>8.2f}"
      + f" {py_s:>8.2f} {py_peak / 1024:>8.0f}"
      + ("" if proc.returncode == 0 else f"  (exit {proc.returncode}: /tmp/sluice-bench-{rows}.txt and .log)"))
if proc.returncode != 0:
    import shutil
    shutil.copy(f"{work}/log", f"/tmp/sluice-bench-{rows}.log")
    shutil.copy(f"{work}/summary", f"/tmp/sluice-bench-{rows}.txt")
PY
    rm -rf "$work"
done
