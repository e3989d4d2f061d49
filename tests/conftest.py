"""Shared fixtures: tiny models and tokenizers built in code, small datasets, configs. No network."""

from __future__ import annotations

import logging
import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before transformers / huggingface_hub are imported
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from pathlib import Path
from typing import Any

import pytest
import torch

from entity_tracking.config import build_config
from entity_tracking.dataset import generate, load_objects
from entity_tracking.toy import build_model, build_tokenizer

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def objects() -> list[str]:
    return load_objects()


@pytest.fixture(scope="session")
def bos_tokenizer():
    """SentencePiece-like word tokenizer that prepends BOS (Llama convention)."""
    return build_tokenizer("metaspace")


@pytest.fixture(scope="session")
def nobos_tokenizer():
    """GPT-2-like byte-level word tokenizer without BOS (Qwen2 convention)."""
    return build_tokenizer("bytelevel")


@pytest.fixture(scope="session")
def tiny_llama(bos_tokenizer):
    return build_model(bos_tokenizer, arch="llama", seed=0)


@pytest.fixture(scope="session")
def small_data(objects) -> dict[str, list[dict[str, Any]]]:
    return generate(
        7, 7, {"discovery": 6, "ablation": 3, "eval": 10, "dcm_train": 4, "dcm_val": 2, "dcm_test": 2}, objects
    )


@pytest.fixture
def gpt2_dir(tmp_path: Path, nobos_tokenizer) -> Path:
    """A tiny random GPT-2 checkpoint with a tokenizer: a model family the study does not support."""
    from transformers import GPT2Config, GPT2LMHeadModel

    ids = {f"{t}_token_id": nobos_tokenizer.eos_token_id for t in ("bos", "eos")}
    config = GPT2Config(vocab_size=len(nobos_tokenizer), n_positions=64, n_embd=16, n_layer=1, n_head=2, **ids)
    torch.manual_seed(0)
    GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    nobos_tokenizer.save_pretrained(tmp_path / "gpt2")
    return tmp_path / "gpt2"


@pytest.fixture
def default_config() -> dict[str, Any]:
    return build_config({}, REPO / "config")


TOY_MODELS = {
    "toy-llama": {"role": "base", "source": "builtin", "builtin": {"arch": "llama", "tokenizer": "metaspace"}},
    "toy-qwen2": {
        "role": "base",
        "source": "builtin",
        "builtin": {"arch": "qwen2", "tokenizer": "bytelevel", "seed": 2},
    },
}


@pytest.fixture
def toy_config() -> dict[str, Any]:
    """A custom study of two tiny models built in code (Llama with BOS, Qwen2 without)."""
    return build_config({"study": "toy", "device": "cpu", "models": TOY_MODELS}, REPO / "config")


@pytest.fixture(scope="session")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished default run: the checkout's own when it is current (CI's first step made it in this clone, so
    the DAG does not run twice), or the checkout at ``ET_TEST_RUN`` when that one is current, otherwise a fresh one
    in a copy of the checkout (code and run in one directory, as a user has it)."""
    from tests.runs import copy_checkout, run_is_current, snakemake

    for candidate in (REPO, *([Path(os.environ["ET_TEST_RUN"])] if os.environ.get("ET_TEST_RUN") else [])):
        if run_is_current(candidate):
            return candidate
    root = copy_checkout(REPO, tmp_path_factory.mktemp("run") / "checkout", with_run=False)
    res = snakemake(["--cores", "2"], root)
    assert res.returncode == 0, res.stderr[-3000:]
    return root


@pytest.fixture
def restore_runtime():
    """Undo the process-wide settings of ``runtime.configure`` (and ``job_context``) after the test."""
    from transformers.utils import logging as hf_logging

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    bars = hf_logging.is_progress_bar_enabled()
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:], root.level = handlers, level
    logging.captureWarnings(False)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
    hf_logging.disable_propagation()
    hf_logging.enable_default_handler()
    if bars:
        hf_logging.enable_progress_bar()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the default study's DAG run (fixture ``default_run``) are ``workflow`` tests."""
    for item in items:
        if "default_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.workflow)
