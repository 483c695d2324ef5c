# sluice: batch ETL with data-quality gates.
#
#   docker build -t sluice .
#   docker run --rm -v $(pwd)/agg_result.db:/app/agg_result.db -v $(pwd)/output:/app/output sluice
#
# Base images are build arguments so that air-gapped builds can point them at
# local images. RUST_IMAGE may also be an image that already holds a binary at
# /prebuilt/sluice: then nothing is compiled (docker/build.sh).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY docker/build.sh /usr/local/bin/sluice-build
# Dependencies first, in a layer of their own: editing src/ does not rebuild DuckDB.
COPY Cargo.toml Cargo.lock ./
RUN sluice-build deps
COPY src src
COPY sql sql
# The default pipeline (sluice.yaml, its SQL and checks) is compiled into the binary too.
COPY sluice.yaml ./
COPY checks checks
RUN sluice-build app

FROM ${RUNTIME_IMAGE}
# CA certificates: object storage and HTTP sources over HTTPS verify with the
# system's roots. /app is world-writable (sticky) because SQLite writes its
# rollback journal next to a single-file mounted agg_result.db, as whichever
# user the job runs as. The CA bundle is not pinned: it should follow
# Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /app \
    && chmod 1777 /app \
    && groupadd --gid 10001 sluice \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /app sluice
WORKDIR /app
COPY --from=builder /out/sluice /usr/local/bin/sluice
COPY docker/entrypoint.sh /usr/local/bin/sluice-entrypoint
# The default checks; mount a directory over /app/checks to use your own.
COPY checks /app/checks
ENTRYPOINT ["/usr/local/bin/sluice-entrypoint"]
