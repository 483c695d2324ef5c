#!/usr/bin/env bash
# The ETL step of .github/workflows/etl.yml, runnable locally:
#
#   ci/etl.sh IMAGE [EVENT]
#
# Runs the job in IMAGE with the volume mounts of the README from the current
# directory: agg_result.db (created empty if missing, so Docker does not create
# a directory), output/, and input/ read-only when it exists. EVENT is the
# GitHub event name: on `pull_request` the job runs with --no-publish and
# metrics are not pushed; otherwise metrics go to $PUSHGATEWAY_URL when set.
# Appends output/summary.md to $GITHUB_STEP_SUMMARY when that is set, and
# exits with the job's exit code (1: the gate failed).
set -euo pipefail

image=${1:?usage: ci/etl.sh IMAGE [EVENT]}
event=${2:-push}
workdir=$(pwd)

touch "$workdir/agg_result.db"
mkdir -p "$workdir/output"

mounts=(-v "$workdir/agg_result.db:/app/agg_result.db" -v "$workdir/output:/app/output")
if [ -d "$workdir/input" ]; then
    mounts+=(-v "$workdir/input:/app/input:ro")
fi

envs=(-e "SLUICE_GIT_SHA=${GITHUB_SHA:-}")
args=()
if [ "$event" = pull_request ]; then
    args=(--no-publish)
elif [ -n "${PUSHGATEWAY_URL:-}" ]; then
    envs+=(-e "SLUICE_PUSHGATEWAY_URL=$PUSHGATEWAY_URL")
fi

status=0
docker run --rm "${mounts[@]}" "${envs[@]}" "$image" "${args[@]}" || status=$?

if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$workdir/output/summary.md" ]; then
    cat "$workdir/output/summary.md" >> "$GITHUB_STEP_SUMMARY"
fi
echo "sluice exited with $status"
exit "$status"
