# envbuild's GPU base from the vendor's image: nvidia/cuda (CUDA runtime, cuDNN where the tag says so, NCCL)
# + Python 3 + OpenMPI. Needs a registry that serves nvidia/cuda; offline, use gpu.Dockerfile (PyPI wheels).
# Build it yourself:
#   docker build -f dockerfiles/gpu-vendor.Dockerfile \
#       --build-arg CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04 -t envbuild/gpu:vendor-cuda12.4 dockerfiles
# or: python -m envbuild base build --cuda 12.4 --source vendor
ARG CUDA_IMAGE=nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04
FROM ${CUDA_IMAGE}
ARG OPENMPI_PACKAGES="openmpi-bin libopenmpi3"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates ${OPENMPI_PACKAGES} \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ENV OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LABEL org.opencontainers.image.title="envbuild GPU base (nvidia/cuda, OpenMPI)" \
      org.envbuild.gpu.source="vendor"
