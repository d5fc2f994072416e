# syntax=docker/dockerfile:1
# The sluice binary on Debian 12. One image serves every role: the
# command picks it (docker run IMAGE run | process | detect | api | ...).
#
#   docker build -t sluice .
#   docker run --rm -p 8000:8000 -e SLUICE_LISTEN=0.0.0.0:8000 sluice run

# ---- build: compilers and -dev packages, thrown away afterwards ----------
FROM debian:12 AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       build-essential cmake pkg-config libavro-dev libjansson-dev \
       libsqlite3-dev libwebsockets-dev librdkafka-dev libpq-dev \
       libcurl4-openssl-dev libssl-dev nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The dashboard's chart library comes from npm at build time, pinned by
# the lockfile, and is compiled into the binary.
COPY CMakeLists.txt ./
COPY package.json ./
COPY package-lock.json ./
COPY cmake cmake
COPY schemas schemas
COPY src src
COPY tests/support tests/support
COPY bench bench
# Tests are not built here: CI runs them on the same sources.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DSLUICE_BUILD_TESTS=OFF \
    && cmake --build /build -j"$(nproc)" --target sluice \
    && strip /build/sluice

# ---- runtime: the shared libraries only ----------------------------------
FROM debian:12-slim AS runtime
# curl is for the health checks of docker-compose.yml and the Helm chart.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       libavro23 libjansson4 libsqlite3-0 libwebsockets17 librdkafka1 \
       libpq5 libcurl4 libssl3 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/sluice \
       --create-home sluice
COPY --from=build /build/sluice /usr/local/bin/sluice
USER sluice
WORKDIR /var/lib/sluice
# Inside a container the API and the metrics listener must accept
# connections from other containers, not only from loopback.
ENV SLUICE_LISTEN=0.0.0.0:8000 \
    SLUICE_DB=/var/lib/sluice/sluice.db
EXPOSE 8000 8081 9100
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["run"]
