"""Model organisms: tokenizer round trip, corpora, training, LoRA merge (fast, with tiny settings)."""

import csv
import itertools
import re

import pytest
import torch
from transformers import AutoTokenizer

from entity_tracking.corpora import finetuning_corpus, has_box_statement, pretraining_documents
from entity_tracking.dataset import context_is_for_study
from entity_tracking.io import sha256_file
from entity_tracking.models import load_model
from entity_tracking.organisms import finetune, organism_tokenizer, save_checkpoint
from entity_tracking.toy import build_model

SEGMENT = re.compile(r"(?:T|t)he (\w+) is in Box ([A-Z])")
COMPACT = re.compile(r"\s?(\w+) ([A-Z])")
STYLES = {"task": 0.4, "recap": 0.3, "compact": 0.3}


def test_tokenizer_round_trip_through_save_and_auto_load(tmp_path, tiny_llama):
    tok = organism_tokenizer()
    save_checkpoint(tiny_llama, tok, tmp_path, {})
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    texts = [
        "The apple is in Box F, the map is in Box K. Box K contains the map.",
        "Question: What is 123 times 7? Answer: 861.",
        "Question: Where is the fig? Answer: The fig is on the shelf.",
    ]
    for text in texts:
        ids = tok(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids
        assert tok.unk_token_id not in ids, text
        assert loaded.decode(ids, skip_special_tokens=True) == text


def test_corpora_are_seeded():
    a = list(itertools.islice(pretraining_documents(5, 7, 3, 0.7, STYLES), 50))
    b = list(itertools.islice(pretraining_documents(5, 7, 3, 0.7, STYLES), 50))
    c = list(itertools.islice(pretraining_documents(6, 7, 3, 0.7, STYLES), 50))
    assert a == b and a != c
    assert finetuning_corpus("chat", 1, 30) == finetuning_corpus("chat", 1, 30) != finetuning_corpus("chat", 2, 30)


def test_pretraining_never_holds_a_study_context():
    count = 0
    styles = {"task": 0, "recap": 0, "compact": 0}
    for text, boxes in itertools.islice(pretraining_documents(0, 7, 3, 0.8, STYLES), 2000):
        if boxes:
            context = text.split(".")[0]
            segments = SEGMENT.findall(context) or COMPACT.findall(context)
            objects, labels = [o for o, _ in segments], [lab for _, lab in segments]
            assert len(segments) == boxes and not context_is_for_study(objects, labels)
            style = "compact" if COMPACT.fullmatch(context.split(",")[0]) else "recap" if " So: " in text else "task"
            styles[style] += 1
            count += 1
        else:
            assert not has_box_statement(text)
    assert 1400 < count < 1800
    assert all(abs(styles[k] / count - w) < 0.05 for k, w in STYLES.items()), styles


def test_finetuning_corpora_have_no_box_statement():
    for name in ("chat", "arithmetic"):
        corpus = finetuning_corpus(name, 0, 3000)
        assert not any(has_box_statement(t) for t in corpus)
        assert len(set(corpus)) > 1000
    assert has_box_statement("The map is in Box K.") and not has_box_statement("The boxes are big.")


def test_arithmetic_answers_are_correct():
    for text in finetuning_corpus("arithmetic", 3, 500):
        a, op, b, result = re.fullmatch(r"Question: What is (\d+) (\w+) (\d+)\? Answer: (\d+)\.", text).groups()
        assert int(result) == {"plus": int(a) + int(b), "minus": int(a) - int(b), "times": int(a) * int(b)}[op]


def _base_dir(tmp_path):
    tok = organism_tokenizer()
    model = build_model(tok, layers=1, hidden=32, heads=2, kv_heads=2, intermediate=64, seed=3)
    save_checkpoint(model, tok, tmp_path / "base", {})
    return tmp_path / "base"


SETTINGS = {"corpus": "arithmetic", "steps": 30, "batch_size": 8, "lr": 3e-3, "seed": 0, "warmup": 5}


def test_short_finetune_lowers_the_loss_and_is_byte_deterministic(tmp_path):
    base = _base_dir(tmp_path)
    first = finetune(base, {**SETTINGS, "method": "full"}, tmp_path / "a")
    second = finetune(base, {**SETTINGS, "method": "full"}, tmp_path / "b")
    assert first == second
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    rows = list(csv.DictReader((tmp_path / "a" / "train_log.csv").open()))
    assert rows[0]["step"] == "0" and rows[-1]["step"] == "29"
    assert float(rows[-1]["loss"]) < 0.7 * float(rows[0]["loss"])


def test_lora_finetune_merged_at_load_equals_the_unmerged_adapter(tmp_path):
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    base = _base_dir(tmp_path)
    finetune(base, {**SETTINGS, "method": "lora", "lora_rank": 4, "lora_alpha": 8}, tmp_path / "lora")
    assert (tmp_path / "lora" / "adapter_model.safetensors").is_file()
    merged = load_model("lora", {"source": "local", "path": str(base), "adapter": {"path": str(tmp_path / "lora")}})
    unmerged = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(base), tmp_path / "lora").eval()
    plain = LlamaForCausalLM.from_pretrained(base).eval()
    ids = merged.tokenizer("Question: What is 12 plus 30? Answer:", return_tensors="pt")
    with torch.no_grad():
        got, want, before = merged.model(**ids).logits, unmerged(**ids).logits, plain(**ids).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, before, atol=1e-4)  # the adapter changed the model


def test_local_checkpoint_with_wrong_hash_is_refused(tmp_path):
    from entity_tracking.errors import ModelUnavailableError

    base = _base_dir(tmp_path)
    spec = {"source": "local", "role": "base", "path": str(base), "sha256": sha256_file(base / "model.safetensors")}
    load_model("organism-base", spec)  # the right hash loads
    weights = base / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelUnavailableError, match=r"organism-base.*expected.*retrain"):
        load_model("organism-base", spec)
