#!/usr/bin/env bash
# CI's container check (docs/running.md, "Container"): build the project's Dockerfile and run the test
# command inside the image. This machine has no Docker engine and no registry, so:
#   1. podman, buildah and debootstrap come from Debian's packages;
#   2. a local Debian 12 base image is made with debootstrap (no registry), plus a CI-only layer that
#      holds what this machine provides to pip on the host: its CA bundle and torch's CPU wheel;
#   3. the Dockerfile is built unchanged with BASE_IMAGE set to that image (the same steps as the CUDA
#      image, with envs/requirements-cpu.txt instead of the CUDA lock);
#   4. the README's test command runs in the container, offline, restricted to the tests not marked
#      `workflow` (the DAG-running tests run on the host, CI's step 2): see docs/running.md, "Container".
# Usage: bash .ci/container.sh      (as root; about 6 to 10 minutes on a fresh machine)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=localhost/entity-tracking:ci
BASE=localhost/et-debian-base:bookworm
LOCAL_BASE=localhost/et-debian-base:bookworm-local
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
step() { echo "== $(date -u +%H:%M:%S) $*"; }

step "install podman, buildah, debootstrap"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman buildah debootstrap runc fuse-overlayfs slirp4netns uidmap >/dev/null
fi
# Engine settings this machine needs (containers may not raise their open-files limit; runc, not crun,
# for the hybrid cgroup layout), in a file of our own rather than /etc/containers.
export CONTAINERS_CONF="$work/containers.conf"
cat > "$CONTAINERS_CONF" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF

if ! podman image exists "$BASE"; then
  step "make the local Debian 12 base with debootstrap"
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  debootstrap --variant=minbase bookworm "$work/rootfs" "${mirror:-http://deb.debian.org/debian}" >/dev/null
  tar -C "$work/rootfs" --numeric-owner -cf "$work/base.tar" .
  podman import --quiet --change 'CMD ["/bin/bash"]' "$work/base.tar" "$BASE" >/dev/null
  rm -rf "$work/rootfs" "$work/base.tar"
fi

step "CI-only layer: the host's CA bundle and torch's CPU wheel"
mkdir -p "$work/local/wheels" "$work/local/ca"
cp /etc/ssl/certs/ca-certificates.crt "$work/local/ca/host-ca.crt"
for crt in /usr/local/share/ca-certificates/*.crt; do [ -f "$crt" ] && cat "$crt" >> "$work/local/ca/host-ca.crt"; done
torch=$(grep -m1 -o '^torch==[^ ]*' envs/requirements-cpu.txt)
python3 -m pip download -q --no-deps --only-binary=:all: --dest "$work/local/wheels" "$torch" 2>&1 | grep -v "is ignored" || true
ls "$work"/local/wheels/torch-*.whl >/dev/null || { echo "pip found no wheel for $torch" >&2; exit 1; }
cat > "$work/local/Containerfile" <<EOF
FROM $BASE
COPY ca/host-ca.crt /etc/ssl/host-ca.crt
COPY wheels/ /opt/wheels/
ENV PIP_CERT=/etc/ssl/host-ca.crt REQUESTS_CA_BUNDLE=/etc/ssl/host-ca.crt SSL_CERT_FILE=/etc/ssl/host-ca.crt
EOF
podman build -q --pull=never -t "$LOCAL_BASE" "$work/local" >/dev/null

step "build the Dockerfile on the local base"
podman build --pull=never \
  --build-arg BASE_IMAGE="$LOCAL_BASE" \
  --build-arg LOCK=envs/requirements-cpu.txt \
  --build-arg WHEELS=/opt/wheels \
  --build-arg GIT_COMMIT="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
  -t "$IMAGE" . > "$work/build.log" 2>&1 || { tail -50 "$work/build.log"; exit 1; }
podman image inspect --format 'image {{.Id}} revision {{index .Labels "org.opencontainers.image.revision"}}' "$IMAGE"

step "the image: a non-root user, the model cache volume, the default command plans the CPU default"
run=(podman run --rm --network none -e ET_IMAGE_ID="$(podman image inspect --format '{{.Id}}' "$IMAGE")" "$IMAGE")
test "$("${run[@]}" id -u)" != 0
"${run[@]}" sh -c 'test "$HF_HOME" = /data/hf && test -w /data/hf && test -n "$ET_BASE_IMAGE"'
"${run[@]}" snakemake --cores all -n --quiet rules | tail -3

step "the README's test command in the container (tests not marked workflow)"
"${run[@]}" python -m pytest -m "not workflow" -p no:cacheprovider -q
step "done"
