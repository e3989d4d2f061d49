"""Per-job runtime set-up: threads, seeds, deterministic algorithms, and logging to ``logs/``."""

from __future__ import annotations

import logging
import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from entity_tracking.job_config import job_view, setting
from entity_tracking.provenance import recorded


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TqdmHandler(logging.StreamHandler):
    """Writes each record through ``tqdm.write``, which clears a progress bar on the stream and redraws it
    below the record: log lines and bars never share a line."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
        except Exception:  # as logging.StreamHandler.emit does
            self.handleError(record)


def _route_transformers_output() -> None:
    """transformers' log records through the root handlers (not its own stderr handler), and its progress bars
    (loading, saving) only when stderr is a terminal, as the package's own (``tqdm(disable=None)``)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    if not sys.stderr.isatty():
        hf_logging.disable_progress_bar()


def configure(threads: int = 1, seed: int = 0, log_file: str | Path | None = None) -> logging.Logger:
    """Set torch threads, seeds and deterministic kernels; log to stderr and ``log_file``.

    One intra-op thread per job is much faster for small models on small CPUs (OpenMP spin-waits);
    snakemake runs jobs in parallel instead. Rule scripts use ``job_context``, which calls this.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    set_seed(seed)
    handlers: list[logging.Handler] = [TqdmHandler(sys.stderr)]  # line-oriented next to progress bars
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", handlers=handlers, force=True
    )
    logging.captureWarnings(True)  # Python warnings become log records: in the job's log, one line each
    for noisy in ("httpx", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _route_transformers_output()
    return logging.getLogger("entity_tracking")


@contextmanager
def job_context(job: Any, seed: int | str = 0, record: bool = True) -> Iterator[logging.Logger]:
    """The set-up of a rule script's job (``job`` is its ``snakemake`` object); yields the logger.

    Inside the block ``job.config`` is the job's view of the config (``job_config.ConfigView``): the settings
    its rule's params carry (``params: config=pick(config, ...)``) and the runtime keys. Reading any other
    setting is refused, naming the rule and the key, and each setting read is recorded. ``seed`` is a number
    or the dotted key of the setting that holds it (read through the view). Then ``configure`` with the rule's
    ``threads:``, the seed and the job's log file; the generated files the job reads are checked against
    their jobs' records (``entity_tracking.integrity``) and, with ``record``, the job is recorded for the
    hash manifest, with the settings it read, when the block ends without an exception
    (``entity_tracking.provenance.recorded``).
    """
    full = job.config
    view = job_view(dict(job.params.items()).get("config"), full, job.rule)
    if isinstance(seed, str):
        seed = int(setting(view, seed))
    log = configure(job.threads, seed, job.log[0])
    job.config = view
    try:
        with recorded(job, seed, job.threads, record, config=full, read=view.read):
            yield log
    finally:
        job.config = full
