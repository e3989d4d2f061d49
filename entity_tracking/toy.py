"""Tiny models and tokenizers built in code: the offline default study and the test fixtures.

The tokenizers are word-level over the task's words, in the two conventions real tokenizers use:
``metaspace`` (SentencePiece-like, ``▁word``, with a BOS token, as Llama) and ``bytelevel``
(GPT-2-like, ``Ġword``, without BOS, as Qwen2).
"""

from __future__ import annotations

import string
from typing import Any, Literal

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from entity_tracking.corpora import COLORS, PLACES, SIZES
from entity_tracking.dataset import load_objects

SPECIALS = ("<unk>", "<s>", "</s>", "<pad>")
# Words of the task, its desiderata variants and the organisms' corpora (see corpora.py).
TASK_TEXT = (
    "The the is in Box contains There there are a bunch of boxes containing objects these not and three "
    "additional PP BB AA Question Answer What Where Is So plus minus times color on"
)
PUNCTUATION = tuple(",.:;?!=+-*/")


def toy_words() -> list[str]:
    """Every word a toy tokenizer knows: task and corpus words, the paper's objects, letters."""
    words = TASK_TEXT.split() + COLORS + SIZES + PLACES + load_objects() + list(string.ascii_uppercase)
    return list(dict.fromkeys(words))


def build_tokenizer(style: Literal["metaspace", "bytelevel"] = "metaspace") -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer with character offsets; ``metaspace`` adds BOS, ``bytelevel`` does not."""
    words = toy_words()
    if style == "metaspace":
        marker = "\u2581"
        # numbers split into single digits after a bare "▁", as SentencePiece Llama tokenizers do
        pieces = [marker + w for w in words] + list(PUNCTUATION) + [marker, *string.digits]
        pre = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Metaspace(prepend_scheme="always"),
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.Punctuation("isolated"),
            ]
        )
        decoder = decoders.Metaspace(prepend_scheme="always")
    elif style == "bytelevel":
        pieces = words + ["\u0120" + w for w in words] + list(PUNCTUATION) + ["\u0120" + p for p in PUNCTUATION]
        pieces += ["\u0120", *string.digits]
        pre = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
        )
        decoder = decoders.ByteLevel()
    else:
        raise ValueError(f"unknown tokenizer style {style!r}; use 'metaspace' or 'bytelevel'")
    vocab = {tok: i for i, tok in enumerate(list(SPECIALS) + list(dict.fromkeys(pieces)))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre
    backend.decoder = decoder
    if style == "metaspace":
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", vocab["<s>"])]
        )
    extra: dict[str, Any] = {"bos_token": "<s>"} if style == "metaspace" else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", eos_token="</s>", pad_token="<pad>", **extra
    )


def build_model(
    tokenizer: PreTrainedTokenizerFast,
    arch: Literal["llama", "mistral", "qwen2"] = "llama",
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    kv_heads: int = 2,
    intermediate: int = 128,
    seed: int = 0,
) -> PreTrainedModel:
    """A randomly initialised causal LM of the given architecture, deterministic in ``seed``."""
    common = dict(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=False,
    )
    if arch == "llama":
        config: Any = LlamaConfig(**common)
        cls: Any = LlamaForCausalLM
    elif arch == "mistral":
        config = MistralConfig(**common, sliding_window=4096)  # Mistral-7B-v0.1's window
        cls = MistralForCausalLM
    elif arch == "qwen2":
        config = Qwen2Config(**common)
        cls = Qwen2ForCausalLM
    else:
        raise ValueError(f"unknown toy architecture {arch!r}; use 'llama', 'mistral' or 'qwen2'")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(config)
    return model.eval()
