import hashlib

import pytest
import torch
from peft import LoraConfig, get_peft_model

from entity_tracking.dataset import build_prompt
from entity_tracking.errors import ModelUnavailableError
from entity_tracking.model_specs import model_source
from entity_tracking.models import architecture, load_model, write_model_card
from entity_tracking.toy import build_model, build_tokenizer
from tests.gguf_fixture import write_llama_gguf

PROMPT = build_prompt(["apple", "map", "ring"], ["F", "K", "C"], "K").text
BUILTIN = {"source": "builtin", "role": "base", "builtin": {"arch": "llama", "tokenizer": "metaspace", "seed": 0}}


def _logits(model, tokenizer, text=PROMPT):
    ids = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def test_builtin_models_report_their_architecture_from_config():
    llama = load_model("a", BUILTIN)
    qwen = load_model(
        "b", {**BUILTIN, "builtin": {"arch": "qwen2", "tokenizer": "bytelevel", "heads": 4, "kv_heads": 1}}
    )
    a, b = architecture(llama), architecture(qwen)
    assert (a["class"], a["heads"], a["kv_heads"], a["head_dim"], a["qkv_bias"], a["adds_bos"]) == (
        "LlamaForCausalLM",
        4,
        2,
        16,
        False,
        True,
    )
    assert (b["class"], b["kv_heads"], b["qkv_bias"], b["adds_bos"]) == ("Qwen2ForCausalLM", 1, True, False)
    assert not any(p.requires_grad for p in llama.model.parameters())
    assert not llama.model.training


def test_builtin_model_is_deterministic_in_its_seed():
    a = load_model("a", BUILTIN)
    b = load_model("b", BUILTIN)
    c = load_model("c", {**BUILTIN, "builtin": {**BUILTIN["builtin"], "seed": 1}})
    assert torch.equal(_logits(a.model, a.tokenizer), _logits(b.model, b.tokenizer))
    assert not torch.equal(_logits(a.model, a.tokenizer), _logits(c.model, c.tokenizer))


def test_local_directory_loads_the_same_weights(tmp_path, tiny_llama, bos_tokenizer):
    tiny_llama.save_pretrained(tmp_path / "m")
    bos_tokenizer.save_pretrained(tmp_path / "m")
    loaded = load_model("local", {"source": "local", "role": "base", "path": str(tmp_path / "m")})
    assert torch.allclose(_logits(loaded.model, loaded.tokenizer), _logits(tiny_llama, bos_tokenizer), atol=1e-6)
    assert loaded.tokenizer(PROMPT)["input_ids"] == bos_tokenizer(PROMPT)["input_ids"]


def test_dtype_is_applied():
    loaded = load_model("half", {**BUILTIN, "dtype": "bfloat16"})
    assert next(loaded.model.parameters()).dtype == torch.bfloat16


def test_missing_local_directory_names_the_model_and_the_fix(tmp_path):
    with pytest.raises(ModelUnavailableError, match=r"model 'ghost'.*does not exist.*Fix"):
        load_model("ghost", {"source": "local", "role": "base", "path": str(tmp_path / "nowhere")})


def test_hub_model_without_network_or_cache_names_the_model_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    spec = {"source": "hub", "role": "base", "repo": "nobody/no-such-model", "revision": "0" * 40}
    with pytest.raises(ModelUnavailableError) as err:
        load_model("remote", spec)
    msg = str(err.value)
    assert "model 'remote'" in msg and "nobody/no-such-model" in msg and "HF_HOME" in msg and "Fix" in msg


def _adapter(tmp_path):
    """A random (non-zero) LoRA adapter on every attention projection of the seed-0 toy model, saved to disk."""
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], init_lora_weights=False
    )
    peft_model = get_peft_model(build_model(build_tokenizer("metaspace"), seed=0), config)
    peft_model.save_pretrained(tmp_path / "adapter")
    return peft_model


def test_peft_adapter_is_merged_before_use(tmp_path, bos_tokenizer):
    base = load_model("base", BUILTIN)
    peft_model = _adapter(tmp_path)
    merged = load_model("goat-like", {**BUILTIN, "role": "finetuned", "adapter": {"path": str(tmp_path / "adapter")}})
    expected = _logits(peft_model, bos_tokenizer)
    got = _logits(merged.model, merged.tokenizer)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, _logits(base.model, base.tokenizer), atol=1e-3)
    # merged: plain Linear layers, so a hook on o_proj sees the fine-tuned weight (the original's Goat bug)
    o_proj = merged.model.model.layers[0].self_attn.o_proj
    assert type(o_proj) is torch.nn.Linear
    assert merged.source["adapter"]["merged"] is True


def _gguf_spec(files, sha):
    return {"source": "gguf", "role": "base", "files": [str(f) for f in files], "sha256": sha}


def test_gguf_is_checked_converted_once_and_loads_identical_logits(tmp_path, tiny_llama, bos_tokenizer):
    path = tmp_path / "tiny.gguf"
    write_llama_gguf(tiny_llama, bos_tokenizer, path)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    half = len(data) // 2
    (tmp_path / "part1").write_bytes(data[:half])
    (tmp_path / "part2").write_bytes(data[half:])
    cache = tmp_path / "cache"

    loaded = load_model("gg", _gguf_spec([tmp_path / "part1", tmp_path / "part2"], sha), cache_dir=cache)
    assert torch.allclose(_logits(loaded.model, loaded.tokenizer), _logits(tiny_llama, bos_tokenizer), atol=1e-5)
    assert loaded.tokenizer(PROMPT)["input_ids"] == bos_tokenizer(PROMPT)["input_ids"]
    assert getattr(loaded.model.config, "quantization_config", None) is None  # a plain, trainable checkpoint
    converted = cache / f"gguf-{sha[:16]}"
    assert (converted / "converted.json").is_file() and not list(cache.glob("*.partial"))

    stamp = (converted / "converted.json").stat().st_mtime_ns
    (tmp_path / "part1").unlink()  # the cached conversion is used; the parts are not read again
    again = load_model("gg", _gguf_spec([tmp_path / "part1", tmp_path / "part2"], sha), cache_dir=cache)
    assert (converted / "converted.json").stat().st_mtime_ns == stamp
    assert torch.equal(_logits(again.model, again.tokenizer), _logits(loaded.model, loaded.tokenizer))


def test_gguf_with_wrong_checksum_or_missing_file_is_refused(tmp_path, tiny_llama, bos_tokenizer):
    path = tmp_path / "tiny.gguf"
    write_llama_gguf(tiny_llama, bos_tokenizer, path)
    with pytest.raises(ModelUnavailableError, match="sha256 .* expected " + "1" * 64):
        load_model("gg", _gguf_spec([path], "1" * 64), cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache" / ("gguf-" + "1" * 16)).exists()
    with pytest.raises(ModelUnavailableError, match=r"GGUF file .*missing\.gguf.* not found"):
        load_model("gg", _gguf_spec([tmp_path / "missing.gguf"], "1" * 64), cache_dir=tmp_path / "cache")
    with pytest.raises(ModelUnavailableError, match="package 'no_such_pkg' is not installed"):
        load_model("gg", _gguf_spec(["pkg:no_such_pkg/x.gguf"], "1" * 64), cache_dir=tmp_path / "cache")


def test_model_card_records_positions_and_source(tmp_path, toy_config, small_data):
    source = model_source(toy_config, "toy-llama")
    card = write_model_card(source, "Toy", "base", None, small_data["eval"][3], tmp_path / "card.json")
    assert (card["model"], card["label"], card["role"], card["base_model"]) == ("toy-llama", "Toy", "base", None)
    assert card["architecture"]["layers"] == 2 and card["source"]["source"] == "builtin"
    pos = card["example"]["positions"]
    assert pos["last"] == 53 and pos["query_label"] == 51 and pos["prev_query_label"] == 6 + 7 * 3
    assert card["example"]["tokens"][pos["correct_object"]] == "▁" + small_data["eval"][3]["answer"]
