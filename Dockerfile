# The workflow's CUDA image. Build and run (docs/running.md, "Container"):
#   docker build --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t entity-tracking .
#   docker run --gpus all -v et-hf:/data/hf entity-tracking snakemake --cores all --config study=paper
#   docker run entity-tracking            # no GPU: the CPU default study
#
# Base: NVIDIA's CUDA 13.0 runtime on Ubuntu 24.04 (PyPI's torch 2.13.0 is built for CUDA 13.0),
# pinned by digest. The digest was taken from public documentation, not pulled here: check it with
# `docker buildx imagetools inspect nvidia/cuda:13.0.2-runtime-ubuntu24.04` before relying on it.
# CI builds this same file with BASE_IMAGE set to a local Debian 12 image (.ci/container.sh).
ARG BASE_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04@sha256:6a0e31b59e70890446f2c17356d6efc0d54260090a8c63d6ca7c2ad049db95d2
FROM ${BASE_IMAGE}

ARG BASE_IMAGE
# The source revision, recorded in a label and in every run's provenance.json.
ARG GIT_COMMIT=unknown
# The hash-locked requirements to install (envs/lock.sh makes both).
ARG LOCK=envs/requirements-cuda.txt
# A folder of the base image with wheels pip may take besides the index (CI's local base holds
# torch's CPU wheel there, for envs/requirements-cpu.txt). Unset for the real image: all from PyPI.
ARG WHEELS=

LABEL org.opencontainers.image.title="entity-tracking" \
      org.opencontainers.image.description="Reproducible artifact of 'Fine-Tuning Enhances Existing Mechanisms: A Case Study on Entity Tracking' (ICLR 2024)" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      io.entity-tracking.lock="${LOCK}"

# Python from the base's own package manager.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# The locked dependencies first (a layer that changes only with the locks), hash-checked.
COPY envs/ /opt/app/envs/
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes ${WHEELS:+--find-links $WHEELS} -r /opt/app/${LOCK}

# A non-root user owns the project, its results and the model cache.
RUN useradd --create-home --uid 10001 --shell /bin/bash et \
    && mkdir -p /data/hf && chown et:et /data/hf /opt/app
COPY --chown=et:et . /opt/app
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation -e /opt/app

ENV PATH=/opt/venv/bin:$PATH \
    HF_HOME=/data/hf \
    PYTHONUNBUFFERED=1 \
    GIT_COMMIT=${GIT_COMMIT} \
    ET_BASE_IMAGE=${BASE_IMAGE} \
    ET_LOCK=${LOCK}
# Model weights: mount a volume (or a host cache) here; nothing is downloaded at build time.
VOLUME ["/data/hf"]
USER et
WORKDIR /opt/app
# The CPU default study; with --config study=paper the paper's (its device: cuda needs --gpus).
CMD ["snakemake", "--cores", "all"]
