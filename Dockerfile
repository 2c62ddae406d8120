# syntax=docker/dockerfile:1
# The operator image: a static binary (musl) on distroless/static, running as non-root 65532.
#   make image            # docker build -t plimsoll:dev .
#   docker run --rm plimsoll:dev --help

FROM docker.io/library/rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY src ./src
# Cargo.toml declares the benchmarks, so their sources must be present to build anything.
COPY benches ./benches
RUN cargo build --release --locked --bin plimsoll --target "$(uname -m)-unknown-linux-musl" \
 && cp "target/$(uname -m)-unknown-linux-musl/release/plimsoll" /plimsoll

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /plimsoll /plimsoll
USER 65532:65532
# /healthz, /readyz, /metrics, Flagger's webhook; the admission webhook when enabled.
EXPOSE 8080 9443
ENTRYPOINT ["/plimsoll"]
CMD ["run"]
