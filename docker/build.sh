#!/bin/sh
# Builds sluice inside the Dockerfile's builder stage.
#   build.sh deps   compile the dependencies only (a layer of its own, so that
#                   editing src/ does not rebuild DuckDB)
#   build.sh app    compile sluice and install it as /out/sluice
# A builder image that already carries a binary at /prebuilt/sluice (tests, or
# a CI job that built it earlier) is used as is: nothing is compiled.
set -eu
mode=${1:?usage: build.sh deps|app}
mkdir -p /out
if [ -x /prebuilt/sluice ]; then
    [ "$mode" = app ] && cp /prebuilt/sluice /out/sluice
    exit 0
fi
case "$mode" in
deps)
    # Stand-in sources with the manifest's targets, so cargo builds only the dependencies.
    mkdir -p src tests/it
    echo 'fn main() {}' > src/main.rs
    : > src/lib.rs
    : > tests/it/main.rs
    cargo build --release --locked
    # The real src/ comes next; the test stand-in stays (tests are not in the image).
    rm -rf src
    ;;
app)
    # The stand-ins are older than the real sources, so cargo rebuilds sluice.
    touch src/main.rs src/lib.rs
    cargo build --release --locked
    cp "${CARGO_TARGET_DIR:-target}/release/sluice" /out/sluice
    strip /out/sluice
    ;;
*)
    echo "usage: build.sh deps|app" >&2
    exit 2
    ;;
esac
