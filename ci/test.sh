#!/usr/bin/env bash
# The test suite, with what it needs installed first: Debian's
# prometheus-pushgateway (the metrics tests start one on 127.0.0.1), PyPI's
# junitparser (a test reads the JUnit report with it), moto's standalone S3
# server (the object-storage tests start one on 127.0.0.1, and boto3 with it)
# and deltalake with pyarrow (the Delta tests read tables back with them). This is the
# README's test command; .ci/run calls it. Extra arguments go to `cargo test`
# (e.g. `bash ci/test.sh -- checks::`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=ci/install.sh
. ci/install.sh

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluice/target}"
apt_install prometheus-pushgateway
python3 -c 'import junitparser' 2> /dev/null || pip_install junitparser
if ! command -v moto_server > /dev/null || ! python3 -c 'import boto3' 2> /dev/null; then
    pip_install 'moto[server]'
fi
python3 -c 'import deltalake, pyarrow' 2> /dev/null || pip_install deltalake pyarrow
cargo test --release --locked "$@"
