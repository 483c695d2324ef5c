#!/bin/sh
# Entrypoint of the sluice image.
# - Never runs the job as root: started as root, it drops to the uid/gid that
#   owns the mounted /app/output (or /app/agg_result.db), so files on the host
#   keep their owner; started with --user, it runs as that user.
# - With no arguments it runs the job; when /app/input does not exist at all it
#   generates demo data first (`sluice demo`). Arguments are passed through:
#   `docker run ... sluice run --fail-on-warn`, `... sluice generate ...`.
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

if [ $# -eq 0 ]; then
    if [ -e /app/input ]; then
        set -- run
    else
        set -- demo --input /tmp/sluice-demo-input
    fi
fi
case "$1" in
    -*) set -- run "$@" ;;
esac
exec /usr/local/bin/sluice "$@"
