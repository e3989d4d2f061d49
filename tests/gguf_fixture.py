"""A tiny Llama model and its word-level tokenizer written as a GGUF file, the way llama.cpp's converter would.

The tokenizer is stored as a SentencePiece unigram vocabulary (``tokenizer.ggml.model = "t5"``): every piece
is a whole word (``▁word``) or a bare punctuation mark, so the best segmentation of each whitespace-separated
chunk is the word-level split of the original tokenizer. transformers rebuilds it as a fast tokenizer with a
Metaspace pre-tokenizer; ``add_bos_token`` makes it prepend BOS like the original. A SentencePiece BPE
vocabulary (``"llama"``) cannot work: it builds words from characters, which this vocabulary lacks.

Known differences, none of which touch in-vocabulary prompts: text the original maps to ``<unk>`` becomes id 2
(transformers' unigram builder fixes ``unk_id=2``), runs of whitespace and newlines are dropped rather than
turned into ``<unk>``, and the loaded tokenizer carries 100 extra ``<extra_id_N>`` tokens past the vocabulary.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

TENSOR_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _permute(weight: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's q/k row permutation (rotary halves to interleaved pairs), undone by transformers on load."""
    return (
        weight.reshape(n_head, 2, weight.shape[0] // n_head // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _gguf_tensors(model: LlamaForCausalLM) -> dict[str, np.ndarray]:
    """Every weight of ``model`` as float32 under its llama.cpp name, q and k permuted."""
    config = model.config
    tensors: dict[str, np.ndarray] = {}
    for name, param in model.state_dict().items():
        array = param.detach().to(torch.float32).cpu().numpy()
        if name == "model.embed_tokens.weight":
            tensors["token_embd.weight"] = array
        elif name == "model.norm.weight":
            tensors["output_norm.weight"] = array
        elif name == "lm_head.weight":
            tensors["output.weight"] = array
        else:
            _, _, layer, module = name.removesuffix(".weight").split(".", 3)
            if module == "self_attn.q_proj":
                array = _permute(array, config.num_attention_heads)
            elif module == "self_attn.k_proj":
                array = _permute(array, config.num_key_value_heads)
            tensors[f"blk.{layer}.{TENSOR_NAMES[module]}.weight"] = array
    return tensors


def write_llama_gguf(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, path: str | Path) -> None:
    """Write a tiny Llama model and its word-level tokenizer as a GGUF file (fp32 tensors)."""
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    rope_theta = (getattr(config, "rope_parameters", None) or {}).get("rope_theta", 10000.0)
    vocab = tokenizer.get_vocab()
    tokens = [piece for piece, _ in sorted(vocab.items(), key=lambda item: item[1])]
    if [vocab[piece] for piece in tokens] != list(range(len(tokens))) or len(tokens) != config.vocab_size:
        raise ValueError("the tokenizer's ids must be 0..vocab_size-1, matching the model's embedding rows")
    special_ids = set(tokenizer.all_special_ids)
    token_types = [gguf.TokenType.CONTROL if i in special_ids else gguf.TokenType.NORMAL for i in range(len(tokens))]
    if tokenizer.unk_token_id is not None:
        token_types[tokenizer.unk_token_id] = gguf.TokenType.UNKNOWN

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("t5")
    writer.add_token_list(tokens)
    # Every piece costs the same, so the segmentation with the fewest pieces (whole words) wins.
    writer.add_token_scores([0.0 if i in special_ids else -1.0 for i in range(len(tokens))])
    writer.add_token_types(token_types)
    for token_id, add in (
        (tokenizer.bos_token_id, writer.add_bos_token_id),
        (tokenizer.eos_token_id, writer.add_eos_token_id),
        (tokenizer.unk_token_id, writer.add_unk_token_id),
        (tokenizer.pad_token_id, writer.add_pad_token_id),
    ):
        if token_id is not None:
            add(token_id)
    writer.add_add_bos_token(tokenizer.bos_token_id is not None)
    writer.add_add_eos_token(False)

    for name, array in _gguf_tensors(model).items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
