"""Model loading from a model spec: hub revision, local directory, GGUF file, or built in code.

Every spec may add a peft ``adapter`` (merged into the weights before anything hooks the model),
a ``tokenizer`` override, a ``dtype`` and ``trust_remote_code`` (off unless the config says so).
Architecture facts (layers, heads, kv heads, head size, biases, BOS) are read from the loaded
model's config and tokenizer, never from its name.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

from entity_tracking.dataset import load_objects
from entity_tracking.errors import ModelUnavailableError
from entity_tracking.io import read_json, sha256_file, write_json
from entity_tracking.provenance import portable
from entity_tracking.tokenization import Vocabulary, check_vocabulary, encode_records

log = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class LoadedModel:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: dict[str, Any]  # what was loaded, with resolved revisions

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def pick_device(preference: str = "auto") -> torch.device:
    """``auto``: the GPU when one is present, else the CPU."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config asks for device 'cuda' but no GPU is visible; set device: auto or cpu")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def _is_pinned(revision: str) -> bool:
    return len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)


def _unavailable(name: str, what: str, err: Exception) -> ModelUnavailableError:
    offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
    return ModelUnavailableError(
        f"model {name!r}: cannot load {what} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})."
        f"{' HF_HUB_OFFLINE is set, so only the local cache was searched.' if offline else ''}"
        " Fix: run once with network access so the weights are downloaded into the Hugging Face cache "
        "(HF_HOME, default ~/.cache/huggingface), or mount a cache that holds them at HF_HOME, or log in "
        "(HF_TOKEN) if the repository is gated, or point the model spec at a local directory "
        "(source: local, path: ...)."
    )


def _hub_kwargs(ref: dict[str, Any], name: str, role: str) -> tuple[str, dict[str, Any]]:
    """``(repo-or-path, from_pretrained kwargs)`` for a ``{repo, revision}`` or ``{path}`` reference."""
    if "path" in ref:
        path = Path(ref["path"]).expanduser()
        if not path.exists():
            raise ModelUnavailableError(
                f"model {name!r}: {role} directory {path} does not exist. Fix: correct 'path' in the model spec."
            )
        return str(path), {}
    if not _is_pinned(ref["revision"]):
        log.warning(
            "model %r: %s %s at revision %r is not pinned to a commit", name, role, ref["repo"], ref["revision"]
        )
    return ref["repo"], {"revision": ref["revision"]}


GENERIC_FAST = ("PreTrainedTokenizerFast", "TokenizersBackend")


def _saved_as_generic_fast(src: str) -> bool:
    """Whether a local tokenizer was saved as a plain fast tokenizer (``tokenizer_class`` pinned, as our
    checkpoints do). AutoTokenizer ignores that pin for some model types (transformers 5 picks Qwen2's own
    tokenizer class for a Qwen2 config) and would silently tokenize differently."""
    config = Path(src) / "tokenizer_config.json"
    return config.is_file() and read_json(config).get("tokenizer_class") in GENERIC_FAST


def _load_tokenizer(name: str, src: str, kwargs: dict[str, Any], trust: bool) -> PreTrainedTokenizerBase:
    try:
        if _saved_as_generic_fast(src):
            return PreTrainedTokenizerFast.from_pretrained(src, **kwargs)
        return AutoTokenizer.from_pretrained(src, use_fast=True, trust_remote_code=trust, **kwargs)
    except (OSError, ValueError) as err:
        raise _unavailable(name, f"the tokenizer from {src}", err) from err


def _load_weights(name: str, src: str, kwargs: dict[str, Any], dtype: torch.dtype, trust: bool) -> PreTrainedModel:
    try:
        return AutoModelForCausalLM.from_pretrained(src, dtype=dtype, trust_remote_code=trust, **kwargs)
    except (OSError, ValueError) as err:
        raise _unavailable(name, f"the weights from {src}", err) from err


def _commit(model_or_tok: Any) -> str | None:
    config = getattr(model_or_tok, "config", None)
    return getattr(config, "_commit_hash", None) if config is not None else None


def load_model(
    name: str, spec: dict[str, Any], device: str | torch.device = "cpu", cache_dir: str | Path = "cache/models"
) -> LoadedModel:
    """Load the model ``name`` described by ``spec`` (a validated ``models.<name>`` config entry)."""
    dtype = DTYPES[spec.get("dtype", "float32")]
    trust = bool(spec.get("trust_remote_code", False))
    source: dict[str, Any] = {"source": spec["source"]}
    # Merge adapters in float32, then cast: merging in half precision loses the small LoRA deltas.
    load_dtype = torch.float32 if spec.get("adapter") else dtype
    kind = spec["source"]
    if kind == "builtin":
        from entity_tracking.toy import build_model, build_tokenizer

        opts = dict(spec["builtin"])
        tokenizer: PreTrainedTokenizerBase = build_tokenizer(opts.pop("tokenizer", "metaspace"))
        model = build_model(tokenizer, **opts).to(load_dtype)
        source["builtin"] = spec["builtin"]
    elif kind in ("hub", "local"):
        src, kwargs = _hub_kwargs({"path": spec["path"]} if kind == "local" else spec, name, "model")
        if kind == "local" and spec.get("sha256"):
            check_weights(name, Path(src), spec["sha256"])
        model = _load_weights(name, src, kwargs, load_dtype, trust)
        tokenizer = None  # type: ignore[assignment]
        source.update({"repo": src, **kwargs, "resolved_commit": _commit(model)})
    elif kind == "gguf":
        from entity_tracking.gguf_import import convert_gguf

        try:
            directory = convert_gguf(name, spec["files"], spec["sha256"], Path(cache_dir))
            src, kwargs = str(directory), {}
            source.update({"files": spec["files"], "sha256": spec["sha256"], "converted": str(directory)})
        except ModelUnavailableError as err:
            if not spec.get("fallback"):
                raise
            log.warning("model %r: %s; loading the fallback %s instead", name, err, spec["fallback"])
            src, kwargs = _hub_kwargs(spec["fallback"], name, "fallback model")
            source.update({"fallback": spec["fallback"], "gguf_unavailable": str(err).split(". Fix:")[0]})
        model = _load_weights(name, src, kwargs, load_dtype, trust)
        source["resolved_commit"] = _commit(model) if kwargs else None
    else:  # the schema admits no other value
        raise ValueError(f"model {name!r}: unknown source {kind!r}")

    if spec.get("tokenizer"):
        tsrc, tkwargs = _hub_kwargs(spec["tokenizer"], name, "tokenizer")
        tokenizer = _load_tokenizer(name, tsrc, tkwargs, trust)
        source["tokenizer"] = {"repo": tsrc, **tkwargs, "resolved_commit": _commit(tokenizer)}
    elif kind != "builtin":
        tokenizer = _load_tokenizer(name, src, kwargs, trust)

    if spec.get("adapter"):
        model = merge_adapter(name, model, spec["adapter"])
        source["adapter"] = {**spec["adapter"], "merged": True}
        model = model.to(dtype)
    model = model.to(pick_device(device) if isinstance(device, str) else device).eval()
    model.requires_grad_(False)
    return LoadedModel(name, model, tokenizer, source)


def merge_adapter(name: str, model: PreTrainedModel, ref: dict[str, Any]) -> PreTrainedModel:
    """Apply a peft adapter and fold it into the weights (``merge_and_unload``).

    Merging first means every hook sees the fine-tuned weights; the original code hooked an
    unmerged LoRA model and silently dropped its ``o_proj`` delta.
    """
    from peft import PeftModel

    src, kwargs = _hub_kwargs(ref, name, "adapter")
    try:
        peft_model = PeftModel.from_pretrained(model, src, **kwargs)
    except (OSError, ValueError) as err:
        raise _unavailable(name, f"the adapter from {src}", err) from err
    return peft_model.merge_and_unload()


def architecture(loaded: LoadedModel) -> dict[str, Any]:
    """Facts the methods need, read from the model's config and tokenizer."""
    cfg = loaded.model.config
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    attn = loaded.model.model.layers[0].self_attn
    probe = loaded.tokenizer("Box")["input_ids"]
    bos = loaded.tokenizer.bos_token_id
    return {
        "class": type(loaded.model).__name__,
        "model_type": cfg.model_type,
        "layers": cfg.num_hidden_layers,
        "heads": heads,
        "kv_heads": getattr(cfg, "num_key_value_heads", None) or heads,
        "head_dim": head_dim,
        "hidden_size": cfg.hidden_size,
        "vocab_size": cfg.vocab_size,
        "qkv_bias": attn.q_proj.bias is not None,
        "o_bias": attn.o_proj.bias is not None,
        "adds_bos": bool(bos is not None and probe and probe[0] == bos),
        "parameters": sum(p.numel() for p in loaded.model.parameters()),
        "dtype": str(next(loaded.model.parameters()).dtype).removeprefix("torch."),
    }


def check_weights(name: str, directory: Path, expected: str) -> None:
    """Refuse a local checkpoint whose ``model.safetensors`` does not have the expected sha256."""
    weights = directory / "model.safetensors"
    if not weights.is_file():
        raise ModelUnavailableError(f"model {name!r}: {weights} is missing. Fix: restore it (git checkout) or retrain.")
    actual = sha256_file(weights)
    if actual != expected:
        raise ModelUnavailableError(
            f"model {name!r}: {weights} has sha256 {actual}, expected {expected}: the checkpoint was modified or "
            f"corrupted. Fix: restore it with `git checkout -- {weights}`, or retrain it (--config retrain_base=true)."
        )


def checkpoint_dir(cfg: dict[str, Any], name: str) -> Path:
    """Where the DAG writes a checkpoint it makes: fine-tunes, retrained bases, converted GGUF models."""
    kind = {"finetune": "finetuned", "gguf": "converted"}.get(cfg["models"][name]["source"], "pretrained")
    return Path("results") / cfg["profile"] / "checkpoints" / kind / name


def effective_spec(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """The spec actually loaded: fine-tunes, retrained bases and GGUF models point at the DAG's checkpoints
    (a GGUF model is converted once, by rule ``convert_model``, into a plain checkpoint).

    A LoRA fine-tune is its base's spec plus the adapter, merged at load.
    """
    spec = cfg["models"][name]
    common = {"role": spec["role"], "dtype": spec.get("dtype", "float32")}
    if spec["source"] == "gguf":
        keep = {k: spec[k] for k in ("tokenizer", "adapter", "trust_remote_code") if k in spec}
        return {"source": "local", "path": str(checkpoint_dir(cfg, name)), **common, **keep}
    if spec["source"] == "finetune":
        ckpt = str(checkpoint_dir(cfg, name))
        if spec["finetune"]["method"] == "lora":
            return {**effective_spec(cfg, spec["base_model"]), **common, "adapter": {"path": ckpt}}
        return {"source": "local", "path": ckpt, **common}
    if cfg.get("retrain_base") and spec.get("recipe"):
        return {k: v for k, v in spec.items() if k != "sha256"} | {"path": str(checkpoint_dir(cfg, name))}
    return spec


SCHEDULING_KEYS = ("train_mem_mb",)  # how Snakemake schedules a model's jobs; no output depends on them


def spec_params(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """Model ``name``'s spec as a rule's ``params`` (its rerun trigger), without the scheduling hints:
    changing how much memory a job reserves must not rerun the study."""
    return {k: v for k, v in cfg["models"][name].items() if k not in SCHEDULING_KEYS}


def trained_inputs(cfg: dict[str, Any], name: str) -> list[str]:
    """The checkpoint directories the DAG must make before model ``name`` can be loaded."""
    spec = cfg["models"][name]
    if spec["source"] == "finetune":
        base = trained_inputs(cfg, spec["base_model"]) if spec["finetune"]["method"] == "lora" else []
        return [*base, str(checkpoint_dir(cfg, name))]
    if spec["source"] == "gguf" or (cfg.get("retrain_base") and spec.get("recipe")):
        return [str(checkpoint_dir(cfg, name))]
    return []


def finetune_base_dir(cfg: dict[str, Any], name: str) -> str:
    """The checkpoint directory a fine-tune starts from: its base model's local (or retrained) checkpoint."""
    base = cfg["models"][name]["base_model"]
    spec = effective_spec(cfg, base)
    if spec["source"] != "local" or spec.get("adapter"):
        raise ValueError(
            f"model {name!r} fine-tunes {base!r}, which is not a plain local checkpoint (source {spec['source']!r}). "
            "Fix: fine-tune from a local checkpoint or from a full (not LoRA) fine-tune."
        )
    return spec["path"]


def convert_model(cfg: dict[str, Any], name: str, out_dir: str | Path) -> dict[str, Any]:
    """Rule convert_model: load a GGUF model (or its fallback) once and save it as a plain checkpoint."""
    spec = cfg["models"][name]
    loaded = load_model(name, spec, device="cpu", cache_dir=cfg["model_cache"])
    out_dir = Path(out_dir)
    loaded.model.save_pretrained(out_dir)
    loaded.tokenizer.save_pretrained(out_dir)
    source = {k: v for k, v in loaded.source.items() if k != "converted"}
    record = {"model": name, "source": portable(source)}  # no absolute paths of this machine
    record["sha256"] = sha256_file(out_dir / "model.safetensors")
    write_json(out_dir / "checkpoint.json", record)
    return record


def load_for_study(cfg: dict[str, Any], name: str, root: str | Path | None = None) -> tuple[LoadedModel, Vocabulary]:
    """Load model ``name`` of the validated config and check its tokenizer against the task's words.

    ``root``: the workflow directory that the config's relative paths (the DAG's checkpoints, the model
    cache) are under, when it is not the current directory (the benchmark's ``--root``)."""
    if name not in cfg["models"]:
        raise KeyError(f"model {name!r} is not in profile {cfg['profile']!r} (models: {sorted(cfg['models'])})")
    spec, cache_dir = effective_spec(cfg, name), cfg["model_cache"]
    if root is not None:

        def under_root(path: str | Path) -> str:  # an absolute path stays as it is
            return str(Path(root) / path)

        spec = dict(spec)
        if "path" in spec:
            spec["path"] = under_root(spec["path"])
        if spec.get("adapter", {}).get("path"):
            spec["adapter"] = {**spec["adapter"], "path": under_root(spec["adapter"]["path"])}
        cache_dir = under_root(cache_dir)
    loaded = load_model(name, spec, device=cfg["device"], cache_dir=cache_dir)
    vocab = check_vocabulary(loaded.tokenizer, load_objects(cfg["dataset"].get("objects_file")), name)
    return loaded, vocab


def write_model_card(cfg: dict[str, Any], name: str, example: dict[str, Any], out_json: str | Path) -> dict[str, Any]:
    """Load and check a model; record its source, architecture and the positions of one example prompt."""
    loaded, vocab = load_for_study(cfg, name)
    enc = encode_records(loaded.tokenizer, [example], vocab)
    spec = cfg["models"][name]
    card = {
        "model": name,
        "label": spec.get("label", name),
        "role": spec["role"],
        "base_model": spec.get("base_model"),
        "source": portable(loaded.source),  # {repo}/... instead of this checkout's absolute path
        "architecture": architecture(loaded),
        "device": str(loaded.device),
        "example": {
            "id": example["id"],
            "tokens": loaded.tokenizer.convert_ids_to_tokens(enc.input_ids[0].tolist()),
            "positions": {
                key: getattr(enc, key)[0].tolist()
                for key in ("last", "query_label", "prev_query_label", "correct_object", "objects", "labels")
            },
            "answer_id": int(enc.answer_ids[0]),
        },
    }
    write_json(out_json, card)
    return card
