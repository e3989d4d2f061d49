"""Finished default runs for the workflow tests: run Snakemake and verify, copy a checkout with its run,
and snapshot a run's outputs to show that a refused run rewrote nothing."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

# A checkout's own files and its run; not the environment, caches or git's store.
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "cache", ".pytest_cache", ".ruff_cache", "__pycache__")
OUTPUT_TREES = ("results/default", "figures/default")


def snakemake(
    args: list[str], cwd: Path, snakefile: Path | None = None, timeout: int = 1200
) -> subprocess.CompletedProcess:
    """``snakemake ARGS`` in ``cwd`` (its own Snakefile unless ``snakefile``), offline; output captured. The jobs
    import the package of the checkout whose Snakefile runs (a copy's own, not the installed one)."""
    code = (snakefile or cwd / "Snakefile").parent
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "snakemake", *(["--snakefile", str(snakefile)] if snakefile else []), *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def verify(root: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -m entity_tracking.verify`` on the run in ``root``, with the code (and expected manifest) of the
    checkout there when it holds one."""
    cmd = [sys.executable, "-m", "entity_tracking.verify", "--root", str(root), *args]
    return subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600)


def run_is_current(root: Path = REPO) -> bool:
    """Whether the checkout ``root`` holds a default run that Snakemake finds up to date with the code and that
    verify finds equal to the expected manifest: exactly what a fresh run would give (README step 1 makes one)."""
    if not (root / "results" / "default" / "manifest.json").is_file():
        return False
    plan = snakemake(["--cores", "1", "-n"], root)
    return "Nothing to be done" in plan.stdout + plan.stderr and verify(root).returncode == 0


def copy_checkout(src: Path, dst: Path, with_run: bool = True) -> Path:
    """A copy of the checkout ``src`` in ``dst``: code, config, shipped models and, with ``with_run``, its
    default run (results, figures, logs and Snakemake's metadata), byte for byte with the same times."""
    skip = () if with_run else ("results", "figures", "logs", ".snakemake")

    def ignore(directory: str, names: list[str]) -> set[str]:
        top = {n for n in names if Path(directory) == src and n in skip}
        return set(COPY_IGNORE(directory, names)) | top

    shutil.copytree(src, dst, ignore=ignore, symlinks=True)
    if not with_run:
        for keep in ("results/README.md", "results/expected", "figures/README.md"):
            (dst / keep).parent.mkdir(parents=True, exist_ok=True)
            if (src / keep).is_dir():
                shutil.copytree(src / keep, dst / keep)
            elif (src / keep).is_file():
                shutil.copy2(src / keep, dst / keep)
    return dst


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """``{file: (sha256, mtime_ns)}`` of every output of a run: equal snapshots mean nothing was rewritten."""
    out = {}
    for top in OUTPUT_TREES:
        for file in sorted((root / top).rglob("*")):
            if file.is_file():
                out[str(file.relative_to(root))] = (
                    hashlib.sha256(file.read_bytes()).hexdigest(),
                    file.stat().st_mtime_ns,
                )
    return out
