# envbuild's GPU base from PyPI wheels: Debian + Python + CUDA runtime, cuDNN and NCCL + OpenMPI.
# Works where no vendor image can be pulled: only a Debian root, PyPI and the Debian mirror are needed.
# Build it yourself (BuildKit; the CA secret only where a proxy intercepts TLS):
#   DOCKER_BUILDKIT=1 docker build -f dockerfiles/gpu.Dockerfile --build-arg ROOT=debian:bookworm-slim \
#       --build-arg CUDA_RUNTIME=12.4.127 --build-arg CUDNN=9.1.0.70 --build-arg NCCL=2.21.5 \
#       --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t envbuild/gpu:cuda12.4-bookworm dockerfiles
# or let envbuild do it: python -m envbuild base build --cuda 12.4
# Versions: envbuild/data/gpu-matrix.json lists the published sets that go together.
ARG ROOT=debian:bookworm-slim

# The wheels are unpacked in a throw-away stage; only their shared libraries reach the image.
FROM ${ROOT} AS cuda-wheels
ARG CUDA_RUNTIME=12.4.127
ARG CUDNN=9.1.0.70
ARG NCCL=2.21.5
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN --mount=type=secret,id=ca --mount=type=cache,target=/root/.cache/pip,id=envbuild-cuda-wheels,sharing=locked \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
 && python3 -m venv /tmp/fetch \
 && /tmp/fetch/bin/pip install --disable-pip-version-check --no-deps --target /tmp/wheels \
        "nvidia-cuda-runtime-cu12==${CUDA_RUNTIME}" "nvidia-cudnn-cu12==${CUDNN}" "nvidia-nccl-cu12==${NCCL}" \
 && mkdir -p /usr/local/cuda/lib64 \
 && cp -a /tmp/wheels/nvidia/cuda_runtime/lib/. /tmp/wheels/nvidia/cudnn/lib/. /tmp/wheels/nvidia/nccl/lib/. \
        /usr/local/cuda/lib64/

FROM ${ROOT}
ARG OPENMPI_PACKAGES="openmpi-bin libopenmpi3"
# OS packages first (stable: shared by every CUDA set), then the GPU libraries. The CUDA ARGs are declared only
# after the apt step, so that changing them does not invalidate it.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates ${OPENMPI_PACKAGES} \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
ARG CUDA_RUNTIME=12.4.127
ARG CUDNN=9.1.0.70
ARG NCCL=2.21.5
COPY --from=cuda-wheels /usr/local/cuda/lib64 /usr/local/cuda/lib64
RUN echo /usr/local/cuda/lib64 > /etc/ld.so.conf.d/envbuild-cuda.conf && ldconfig
# Read by the NVIDIA container toolkit when the image runs with --gpus.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    CUDA_VERSION=${CUDA_RUNTIME} \
    OMPI_ALLOW_RUN_AS_ROOT=1 \
    OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
LABEL org.opencontainers.image.title="envbuild GPU base (CUDA runtime, cuDNN, NCCL, OpenMPI)" \
      org.envbuild.python.version="3.11" \
      org.envbuild.glibc.version="2.36" \
      org.envbuild.gpu.source="pypi" \
      org.envbuild.cuda.version="${CUDA_RUNTIME}" \
      org.envbuild.cudnn.version="${CUDNN}" \
      org.envbuild.nccl.version="${NCCL}"
