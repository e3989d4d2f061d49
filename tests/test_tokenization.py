from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from entity_tracking.dataset import build_prompt
from entity_tracking.tokenization import (
    TokenizationError,
    check_vocabulary,
    counterfactual_prompt,
    encode_prompts,
    encode_records,
    record_prompt,
)
from entity_tracking.toy import build_tokenizer


def _positions(enc, i=0):
    return {k: getattr(enc, k)[i].tolist() for k in ("last", "query_label", "prev_query_label", "correct_object")}


@pytest.mark.parametrize("query", range(7))
def test_positions_with_bos_match_the_papers_position_map(bos_tokenizer, objects, small_data, query):
    """With BOS: objects at 7k+2, labels at 7k+6, query label 51, last 53, 54 tokens."""
    vocab = check_vocabulary(bos_tokenizer, objects)
    rec = small_data["eval"][query]
    enc = encode_records(bos_tokenizer, [rec], vocab)
    assert enc.input_ids.shape == (1, 54)
    assert enc.input_ids[0, 0] == bos_tokenizer.bos_token_id
    assert enc.objects[0].tolist() == [7 * k + 2 for k in range(7)]
    assert enc.labels[0].tolist() == [7 * k + 6 for k in range(7)]
    assert _positions(enc) == {
        "last": 53,
        "query_label": 51,
        "prev_query_label": 6 + 7 * query,
        "correct_object": 2 + 7 * query,
    }


def test_positions_without_bos_shift_by_one(nobos_tokenizer, bos_tokenizer, objects, small_data):
    records = small_data["eval"][:14]
    with_bos = encode_records(bos_tokenizer, records, check_vocabulary(bos_tokenizer, objects))
    without = encode_records(nobos_tokenizer, records, check_vocabulary(nobos_tokenizer, objects))
    assert without.input_ids.shape == (14, 53)
    assert without.input_ids[0, 0] != nobos_tokenizer.bos_token_id
    for key in ("last", "query_label", "prev_query_label", "correct_object", "objects", "labels"):
        assert (getattr(without, key) == getattr(with_bos, key) - 1).all(), key


@pytest.mark.parametrize("style", ["metaspace", "bytelevel"])
def test_located_tokens_are_the_words(style, objects, small_data):
    tok = build_tokenizer(style)
    vocab = check_vocabulary(tok, objects)
    records = small_data["discovery"]
    enc = encode_records(tok, records, vocab)
    rows = range(len(records))
    assert (enc.input_ids[rows, enc.correct_object] == enc.answer_ids).all()
    assert (enc.input_ids[rows, enc.prev_query_label] == enc.input_ids[rows, enc.query_label]).all()
    for i, rec in enumerate(records):
        assert enc.answer_ids[i] == vocab.object_ids[rec["answer"]]
        assert enc.input_ids[i, enc.labels[i]].tolist() == [vocab.label_ids[x] for x in rec["labels"]]
        assert tok.decode(enc.input_ids[i, enc.last[i]]).strip() == "the"


def test_counterfactual_prompts_mark_an_absent_query_label(bos_tokenizer, objects, small_data):
    vocab = check_vocabulary(bos_tokenizer, objects)
    records = small_data["discovery"]
    enc = encode_prompts(bos_tokenizer, [counterfactual_prompt(r) for r in records], vocab)
    for i, rec in enumerate(records):
        cf = rec["counterfactual"]
        present = cf["query_label"] in cf["labels"]
        assert (enc.prev_query_label[i] >= 0) == present
        assert (enc.correct_object[i] >= 0) == present
        assert enc.last[i] == 53 and enc.query_label[i] == 51
    assert (enc.answer_ids == -1).all()


def test_padding_keeps_positions_and_select_trims(bos_tokenizer, objects):
    vocab = check_vocabulary(bos_tokenizer, objects)
    short = build_prompt(["apple", "map"], ["F", "K"], "K")
    long = build_prompt(["apple", "map", "ring"], ["F", "K", "C"], "F")
    enc = encode_prompts(bos_tokenizer, [short, long], vocab, ["map", "apple"])
    assert enc.input_ids.shape == (2, 26)
    assert enc.attention_mask[0].sum() == 19 and enc.last[0] == 18
    assert enc.input_ids[0, 19:].eq(bos_tokenizer.pad_token_id).all()
    first = enc.select(slice(0, 1))
    assert first.input_ids.shape == (1, 19) and first.last.tolist() == [18]


def _bpe_tokenizer() -> PreTrainedTokenizerFast:
    """A small byte-level BPE trained here, whose rare words split into several tokens."""
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=420, special_tokens=["<unk>", "<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    text = ["The apple is in Box A, the map is in Box B. Box A contains the apple"] * 50
    text += [f"Box {c} the {c}" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"] * 20
    backend.train_from_iterator(text, trainer)
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", bos_token="<s>")


def test_single_token_check_lists_every_offender(objects):
    tok = _bpe_tokenizer()
    with pytest.raises(TokenizationError) as err:
        check_vocabulary(tok, ["apple", "map", "television", "newspaper"], "bpe-model")
    msg = str(err.value)
    assert "'bpe-model'" in msg and "'television'" in msg and "'newspaper'" in msg
    assert "'apple'" not in msg and "Fix:" in msg
    vocab = check_vocabulary(tok, ["apple", "map"])
    assert set(vocab.label_ids) == set("ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def test_unknown_words_fail_the_check(bos_tokenizer):
    with pytest.raises(TokenizationError, match="'pineapple'"):
        check_vocabulary(bos_tokenizer, ["apple", "pineapple"])


def test_slow_tokenizers_are_refused():
    with pytest.raises(TokenizationError, match="fast tokenizer"):
        check_vocabulary(SimpleNamespace(is_fast=False), ["apple"], "slow")


def test_trailing_special_tokens_are_refused(objects):
    tok = build_tokenizer("metaspace")
    vocab = check_vocabulary(tok, objects)
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", tok.bos_token_id), ("</s>", tok.eos_token_id)]
    )
    with pytest.raises(TokenizationError, match="appends 1 token"):
        encode_prompts(tok, [build_prompt(["apple", "map"], ["F", "K"], "K")], vocab)


def test_edited_records_are_detected(small_data):
    rec = dict(small_data["eval"][0])
    rec["answer"] = rec["answer"]  # untouched record passes
    record_prompt(rec)
    rec["prompt"] = rec["prompt"].replace("Box", "Bin", 1)
    with pytest.raises(ValueError, match="corrupted or was edited"):
        record_prompt(rec)
