#!/bin/sh
# Entrypoint of the sluice image.
# - Never runs the job as root: started as root, it drops to the uid/gid that
#   owns the mounted /app/output (or /app/agg_result.db), so files on the host
#   keep their owner; started with --user, it runs as that user.
# - With no arguments it runs the job; when neither /app/input nor a pipeline
#   of your own (/app/sluice.yaml, SLUICE_CONFIG) exists it generates demo
#   data first (`sluice demo`). Flags alone go to that job
#   (`docker run ... sluice --no-publish`); a command is passed through
#   (`docker run ... sluice generate ...`).
set -eu

if [ "$(id -u)" = 0 ]; then
    owner=""
    for path in /app/output /app/agg_result.db /app/state; do
        if [ -e "$path" ] && [ "$(stat -c %u "$path")" != 0 ]; then
            owner="$(stat -c %u "$path"):$(stat -c %g "$path")"
            break
        fi
    done
    # Nothing mounted, or mounted by root: run as the image's unprivileged user.
    [ -n "$owner" ] || owner="10001:10001"
    uid=${owner%:*}
    gid=${owner#*:}
    exec setpriv --reuid="$uid" --regid="$gid" --clear-groups -- "$0" "$@"
fi

# The lake stays inside the container, out of the mounted /app, unless
# SLUICE_DATA_DIR or the pipeline (`lake:` in sluice.yaml) names one.
if [ -z "${SLUICE_DATA_DIR:-}" ] && ! grep -qs '^lake:' "${SLUICE_CONFIG:-/app/sluice.yaml}"; then
    export SLUICE_DATA_DIR=/tmp/sluice-data
fi

# No command, or flags only: the job, on demo data when there is no input and
# no pipeline of the user's own (its sources say where its input is).
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
    if [ -e /app/input ] || [ -e /app/sluice.yaml ] || [ -n "${SLUICE_CONFIG:-}" ]; then
        set -- run "$@"
    else
        set -- demo --input /tmp/sluice-demo-input "$@"
    fi
fi
exec /usr/local/bin/sluice "$@"
