# envbuild's CPU base with MPI: Debian + Python 3 (venv) + OpenMPI, nothing else.
# Build it yourself:
#   docker build -f dockerfiles/cpu.Dockerfile --build-arg ROOT=debian:bookworm-slim -t envbuild/cpu:openmpi-bookworm dockerfiles
# or: python -m envbuild base build --cpu
# OPENMPI_PACKAGES: add libopenmpi-dev where environments compile against MPI (mpi4py from source).
ARG ROOT=debian:bookworm-slim
FROM ${ROOT}
ARG OPENMPI_PACKAGES="openmpi-bin libopenmpi3"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates ${OPENMPI_PACKAGES} \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# mpirun refuses root unless told; containers commonly run as root.
ENV OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LABEL org.opencontainers.image.title="envbuild CPU base (Python, OpenMPI)" \
      org.envbuild.python.version="3.11" \
      org.envbuild.glibc.version="2.36"
