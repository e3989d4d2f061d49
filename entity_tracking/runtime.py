"""Per-job runtime set-up: threads, seeds, deterministic algorithms, and logging to ``logs/``."""

from __future__ import annotations

import logging
import os
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure(threads: int = 1, seed: int = 0, log_file: str | Path | None = None, job: Any = None) -> logging.Logger:
    """Set torch threads, seeds and deterministic kernels; log to stderr and ``log_file``.

    One intra-op thread per job is much faster for small models on small CPUs (OpenMP spin-waits);
    snakemake runs jobs in parallel instead. With ``job`` (a rule script's ``snakemake`` object)
    the job is recorded for the hash manifest when the script finishes without an error
    (``entity_tracking.provenance``).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    set_seed(seed)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if job is not None:
        from entity_tracking.provenance import record_on_success

        record_on_success(job, seed=seed, threads=threads)
    return logging.getLogger("entity_tracking")
