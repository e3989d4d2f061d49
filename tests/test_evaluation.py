import csv
import json

import pytest
import torch

from entity_tracking.dataset import build_prompt
from entity_tracking.evaluation import accuracy, evaluate, run_evaluation, wilson_interval, write_accuracy_table
from entity_tracking.io import write_jsonl
from entity_tracking.model_specs import model_source
from entity_tracking.models import LoadedModel
from entity_tracking.tokenization import check_vocabulary, encode_prompts, encode_records


class RiggedLM(torch.nn.Module):
    """Reads the task off the tokens: at every position t it predicts the object stored in the box whose label
    sits at t-2 (the object is 4 tokens before the label's earlier occurrence). ``wrong`` shifts the answer to
    the object of the next box, which is also in the prompt but incorrect."""

    def __init__(self, vocab_size: int, wrong: bool = False):
        super().__init__()
        self.vocab_size = vocab_size
        self.wrong = wrong
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask):
        batch, length = input_ids.shape
        logits = torch.zeros(batch, length, self.vocab_size)
        logits[..., 0] = 0.5  # an always-present distractor: argmax must beat it
        for b in range(batch):
            ids = input_ids[b].tolist()
            for t in range(2, int(attention_mask[b].sum())):
                earlier = [s for s in range(t - 2) if ids[s] == ids[t - 2]]
                if earlier:
                    target = earlier[0] - 4 + (7 if self.wrong else 0)
                    if 0 <= target < length:
                        logits[b, t, ids[target]] = 1.0
        return type("Out", (), {"logits": logits})()


def _loaded(tokenizer, wrong=False) -> LoadedModel:
    return LoadedModel("rigged", RiggedLM(len(tokenizer), wrong), tokenizer, {"source": "test"})


@pytest.mark.parametrize("style", ["bos_tokenizer", "nobos_tokenizer"])
def test_model_rigged_to_answer_right_scores_one(style, request, objects, small_data):
    tok = request.getfixturevalue(style)
    enc = encode_records(tok, small_data["eval"], check_vocabulary(tok, objects))
    summary, predicted = evaluate(_loaded(tok), enc, batch_size=16)
    assert summary["records"] == 70 and summary["correct"] == 70 and summary["accuracy"] == 1.0
    assert (predicted == enc.answer_ids).all()
    assert summary["ci_high"] == 1.0 and 0.94 < summary["ci_low"] < 0.96


def test_model_rigged_to_answer_wrong_scores_zero(bos_tokenizer, objects, small_data):
    records = [r for r in small_data["eval"] if r["query"] < 6]  # the "next box" exists
    enc = encode_records(bos_tokenizer, records, check_vocabulary(bos_tokenizer, objects))
    summary, predicted = evaluate(_loaded(bos_tokenizer, wrong=True), enc, batch_size=7)
    assert summary["correct"] == 0 and summary["accuracy"] == 0.0
    assert (predicted != enc.answer_ids).all()
    assert summary["ci_low"] == 0.0


def test_evaluation_reads_the_last_real_token_of_padded_batches(bos_tokenizer, objects):
    vocab = check_vocabulary(bos_tokenizer, objects)
    prompts = [
        build_prompt(["apple", "map"], ["F", "K"], "K"),
        build_prompt(["apple", "map", "ring"], ["F", "K", "C"], "F"),
    ]
    enc = encode_prompts(bos_tokenizer, prompts, vocab, ["map", "apple"])
    summary, _ = evaluate(_loaded(bos_tokenizer), enc, batch_size=2)
    assert summary["correct"] == 2


def test_wilson_interval_known_values():
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(66, 100, 0.99)[1] - wilson_interval(66, 100, 0.99)[0] > (
        wilson_interval(66, 100)[1] - wilson_interval(66, 100)[0]
    )


def test_accuracy_is_not_rounded():
    result = accuracy(torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4]))
    assert result["accuracy"] == 2 / 3 and result["correct"] == 2 and result["records"] == 3


def test_run_evaluation_writes_json_and_per_record_csv(tmp_path, toy_config, small_data):
    data = tmp_path / "eval.jsonl"
    write_jsonl(data, small_data["eval"])
    source = model_source(toy_config, "toy-qwen2")
    result = run_evaluation(source, "Qwen", "base", data, tmp_path / "e.json", tmp_path / "p.csv", 16, 0.95)
    saved = json.loads((tmp_path / "e.json").read_text())
    assert saved == result and saved["model"] == "toy-qwen2" and saved["records"] == 70
    assert (saved["label"], saved["role"], saved["split"]) == ("Qwen", "base", "eval")
    rows = list(csv.DictReader((tmp_path / "p.csv").open()))
    assert [r["id"] for r in rows] == [r["id"] for r in small_data["eval"]]
    assert sum(int(r["correct"]) for r in rows) == saved["correct"]
    assert all(int(r["correct"]) == (r["answer_id"] == r["predicted_id"]) for r in rows)
    write_accuracy_table([tmp_path / "e.json", tmp_path / "e.json"], tmp_path / "acc.csv")
    table = list(csv.DictReader((tmp_path / "acc.csv").open()))
    assert len(table) == 2 and table[0]["model"] == "toy-qwen2" and float(table[0]["accuracy"]) == saved["accuracy"]
