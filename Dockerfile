# syntax=docker/dockerfile:1
# saas-api: a multi-stage build. The builder compiles the release binary (migrations are
# embedded in it); the runtime image holds only that binary, CA certificates and a non-root
# user. `.ci/run` builds the same release binary on every run.

FROM rust:1.95-slim-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY domain domain
COPY store store
COPY projections projections
COPY app app
COPY litellm litellm
COPY api api
COPY testkit testkit
COPY migrations migrations
RUN cargo build --release --locked --bin saas-api

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin saas
COPY --from=builder /src/target/release/saas-api /usr/local/bin/saas-api
USER saas
ENV HOST=0.0.0.0 PORT=8003 LOG_FORMAT=json
EXPOSE 8003
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["saas-api", "healthcheck"]
ENTRYPOINT ["saas-api"]
CMD ["serve"]
