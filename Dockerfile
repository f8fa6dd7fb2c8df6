# coinstaker container image. Not built by CI (no Docker engine runs on the CI machines).
#   docker build -t coinstaker .
#   docker run -v $PWD/coinstaker.toml:/etc/coinstaker/coinstaker.toml:ro \
#              -e COINSTAKER_CHAIN__VRSC__RPC_PASSWORD=... -p 8080:8080 coinstaker

# Rust >= 1.94 is required by sea-orm 2 / sqlx 0.9; the image carries g++ for libzmq.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin coinstaker

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/coinstaker coinstaker
COPY --from=build /src/target/release/coinstaker /usr/local/bin/coinstaker
USER coinstaker
WORKDIR /var/lib/coinstaker
# Listen on every interface inside the container; the file and COINSTAKER_* variables say the rest.
ENV COINSTAKER_HTTP__BIND=0.0.0.0:8080
# Two malloc arenas instead of one per thread: 161 MiB instead of 239 MiB resident with
# 10,000 subscribers on SQLite, for a few % of block latency (BENCHMARKS.md).
ENV MALLOC_ARENA_MAX=2
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["coinstaker", "healthcheck", "--config", "/etc/coinstaker/coinstaker.toml"]
ENTRYPOINT ["coinstaker"]
CMD ["serve", "--config", "/etc/coinstaker/coinstaker.toml"]
