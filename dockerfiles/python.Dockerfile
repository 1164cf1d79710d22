# envbuild's default CPU base: Debian bookworm with its Python 3.11 and venv, nothing else.
# Build it yourself with:  docker build -f dockerfiles/python.Dockerfile -t envbuild/python:3.11-bookworm .
# ROOT is any Debian bookworm image: debian:bookworm-slim from a registry, or one made with debootstrap.
ARG ROOT=debian:bookworm-slim
FROM ${ROOT}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
LABEL org.opencontainers.image.title="envbuild python base" \
      org.envbuild.python.version="3.11" \
      org.envbuild.glibc.version="2.36"
