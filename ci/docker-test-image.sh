#!/usr/bin/env bash
# Builds the images the container tests run, without pulling anything (no
# registry is needed):
#   sluice-test-base:bookworm   a minimal Debian bookworm from debootstrap,
#                               built once and cached by its tag
#   sluice-test-prebuilt        the base plus a host-built binary at /prebuilt/sluice
#   sluice-test                 the Dockerfile's runtime image, with both images
#                               above as its RUST_IMAGE and RUNTIME_IMAGE
# Usage: ci/docker-test-image.sh BINARY
set -euo pipefail

binary=${1:?usage: ci/docker-test-image.sh BINARY}
root=$(cd "$(dirname "$0")/.." && pwd)
base=sluice-test-base:bookworm
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

if ! docker image inspect "$base" > /dev/null 2>&1; then
    if ! command -v debootstrap > /dev/null; then
        $sudo apt-get install -y --no-install-recommends debootstrap > /dev/null
    fi
    rootfs=$(mktemp -d)
    trap '$sudo rm -rf "$rootfs"' EXIT
    $sudo debootstrap --variant=minbase bookworm "$rootfs" > /dev/null
    $sudo tar -C "$rootfs" -c . | docker import - "$base" > /dev/null
fi

context=$(mktemp -d)
cp "$binary" "$context/sluice"
printf 'FROM %s\nLABEL org.sluice.test=1\nCOPY sluice /prebuilt/sluice\n' "$base" > "$context/Dockerfile"
docker build -q -t sluice-test-prebuilt "$context" > /dev/null
rm -rf "$context"

docker build -q -t sluice-test --label org.sluice.test=1 \
    --build-arg RUST_IMAGE=sluice-test-prebuilt \
    --build-arg RUNTIME_IMAGE="$base" \
    "$root" > /dev/null
# Earlier builds of the two test images are dangling now.
docker image prune -f --filter label=org.sluice.test=1 > /dev/null
echo sluice-test
