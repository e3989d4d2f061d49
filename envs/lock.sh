#!/usr/bin/env bash
# Regenerate the hash-locked requirement files from envs/requirements.in (see envs/README.md):
#   envs/requirements-cpu.txt   this machine kind: Python 3.11, Linux x86_64, torch's CPU wheel
#   envs/requirements-cuda.txt  the CUDA image: Python 3.12 (Ubuntu 24.04), torch and its CUDA wheels from PyPI
# Usage: bash envs/lock.sh [CUTOFF]   (CUTOFF: ignore releases after this UTC time; default the one below)
set -euo pipefail
cd "$(dirname "$0")/.."
CUTOFF="${1:-2026-12-01T00:00:00Z}"   # releases after this are ignored, so a rerun gives the same files
WHEELS="${TORCH_CPU_WHEELS:-/opt/wheels}"  # a folder holding torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl

tools=$(mktemp -d)
python3 -m venv "$tools" && "$tools/bin/pip" install -q "uv==0.13.9"
compile() {  # compile OUT PYTHON [extra uv options]
  local out=$1 py=$2
  shift 2
  "$tools/bin/uv" pip compile envs/requirements.in --generate-hashes --python-version "$py" \
    --python-platform x86_64-manylinux_2_28 --exclude-newer "$CUTOFF" --no-header --quiet "$@" -o "$out.body"
  { echo "# Hash-locked by envs/lock.sh (uv pip compile --generate-hashes, Python $py, Linux x86_64, cutoff $CUTOFF)."
    echo "# Do not edit; change envs/requirements.in and rerun: bash envs/lock.sh"
    sed "s|$tools/constraints.txt|envs/requirements-cpu.txt (its versions)|" "$out.body"; } > "$out"
  rm "$out.body"
}
# CPU: torch's CPU build (the wheel on this machine's disk, or PyTorch's CPU index elsewhere).
compile envs/requirements-cpu.txt 3.11 --find-links "$WHEELS"
# CUDA: PyPI's torch (CUDA 13 wheels); every package the CPU lock has keeps its version there.
grep -v '^torch==' envs/requirements-cpu.txt | sed '/^ *--hash/d; /^ *#/d; s/ *\\$//' > "$tools/constraints.txt"
compile envs/requirements-cuda.txt 3.12 --constraint "$tools/constraints.txt"
rm -rf "$tools"
sha256sum envs/requirements-*.txt
