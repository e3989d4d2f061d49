"""A clean run prints nothing a user cannot act on: no library warnings, no network attempts, whole log lines."""

from __future__ import annotations

import logging
import re
import socket
import sys
import warnings

import peft.utils.other
import pytest
from tqdm import tqdm

from entity_tracking.models import load_model
from entity_tracking.organisms import finetune, organism_tokenizer
from entity_tracking.runtime import configure
from entity_tracking.toy import build_model

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO entity_tracking\.test: step \d+ of 40")


@pytest.fixture
def base_dir(tmp_path):
    """A tiny Llama with the organisms' tokenizer, saved as a fine-tune's base checkpoint."""
    tokenizer = organism_tokenizer()
    directory = tmp_path / "base"
    build_model(tokenizer, arch="llama", layers=1, hidden=32, heads=2, kv_heads=2, intermediate=64).save_pretrained(
        directory
    )
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture
def network_attempts(monkeypatch):
    """Online mode (as a user's run), but every lookup on the hub or connection is recorded and fails."""
    attempts: list[str] = []

    def refuse(what):
        def call(*args, **kwargs):
            attempts.append(what)
            raise OSError(f"{what}: network disabled in this test")

        return call

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # peft skips its hub lookup when this is set
    monkeypatch.setattr(peft.utils.other, "file_exists", refuse("huggingface_hub.file_exists"))
    monkeypatch.setattr(socket, "getaddrinfo", refuse("getaddrinfo"))
    monkeypatch.setattr(socket.socket, "connect", refuse("connect"))
    return attempts


def _lora(steps: int = 2) -> dict:
    return {"corpus": "arithmetic", "method": "lora", "lora_rank": 4, "lora_alpha": 8, "steps": steps}


def test_lora_finetune_and_its_merge_warn_nothing_and_make_no_network_attempt(tmp_path, base_dir, network_attempts):
    settings = {**_lora(), "batch_size": 2, "lr": 1e-3, "seed": 1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finetune(base_dir, settings, tmp_path / "lora")
        adapter = {"path": str(tmp_path / "lora")}  # PeftModel.from_pretrained, then merged
        load_model("lora", {"source": "local", "role": "finetuned", "path": str(base_dir), "adapter": adapter})
    assert network_attempts == []
    assert [str(w.message) for w in caught] == []  # neither is_gradient_checkpointing nor a failed hub lookup
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()


def test_full_finetune_warns_nothing(tmp_path, base_dir, network_attempts):
    settings = {"corpus": "chat", "method": "full", "steps": 2, "batch_size": 2, "lr": 1e-4, "seed": 1}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        finetune(base_dir, settings, tmp_path / "full")
    assert network_attempts == [] and [str(w.message) for w in caught] == []


def test_log_lines_stay_whole_next_to_a_progress_bar(tmp_path, capsys, restore_runtime):
    log_file = tmp_path / "logs" / "job.log"
    configure(1, 0, log_file)
    log = logging.getLogger("entity_tracking.test")
    for step in tqdm(range(40), desc="steps", file=sys.stderr, disable=False, mininterval=0):
        log.info("step %d of 40", step)
    logging.getLogger("transformers.modeling_utils").warning("a transformers warning")
    for handler in logging.getLogger().handlers:
        handler.flush()

    text = log_file.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text and "steps:" not in text
    lines = text.splitlines()
    assert [bool(LINE.fullmatch(line)) for line in lines[:40]] == [True] * 40
    assert re.fullmatch(r"\S+ \S+ WARNING transformers\.modeling_utils: a transformers warning", lines[40])
    assert len(lines) == 41

    # on the terminal the bar is cleared before each record: every record starts a line of its own
    segments = [seg for line in capsys.readouterr().err.split("\n") for seg in [line.rsplit("\r", 1)[-1]]]
    records = [seg for seg in segments if "INFO entity_tracking.test" in seg]
    assert len(records) == 40 and all(LINE.fullmatch(seg) for seg in records)
