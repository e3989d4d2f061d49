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

from entity_tracking.config import repo_path
from entity_tracking.dataset import load_objects
from entity_tracking.errors import ModelUnavailableError
from entity_tracking.io import is_workflow_output, read_json, sha256_file, write_json
from entity_tracking.model_specs import ModelSource
from entity_tracking.provenance import portable
from entity_tracking.tokenization import Vocabulary, check_vocabulary, encode_records
from entity_tracking.training import peft_quietly

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
        path = Path(repo_path(ref["path"]))
        if not path.exists():
            raise ModelUnavailableError(
                f"model {name!r}: {role} directory {path} does not exist. Fix: correct 'path' in the model spec."
            )
        if path.is_dir():
            check_checkpoint(name, path)
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
        model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, trust_remote_code=trust, **kwargs)
    except (OSError, ValueError) as err:
        raise _unavailable(name, f"the weights from {src}", err) from err
    check_architecture(name, model)
    return model


# Model types the methods are tested on, each with a tiny random model (toy.build_model; tests/test_interventions.py).
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2")
# What the hooks and partial forwards use (interventions.ModelParts, partial_forward, cmap): a Llama-style decoder.
MODEL_MODULES = ("model.embed_tokens", "model.rotary_emb", "model.norm", "lm_head")
LAYER_MODULES = ("input_layernorm", "post_attention_layernorm", "mlp", *(f"self_attn.{p}_proj" for p in "qkvo"))


def _missing_modules(model: Any) -> list[str]:
    """The modules of a Llama-style decoder that the methods hook and ``model`` lacks."""

    def has(obj: Any, dotted: str) -> bool:
        for attr in dotted.split("."):
            obj = getattr(obj, attr, None)
        return obj is not None

    missing = [f"model.{m}" for m in MODEL_MODULES if not has(model, m)]
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not layers:
        return [*missing, "model.model.layers"]
    return missing + [f"model.model.layers[i].{m}" for m in LAYER_MODULES if not has(layers[0], m)]


def check_architecture(name: str, model: PreTrainedModel) -> None:
    """Refuse a model the methods cannot hook: a model type they are not tested on, or modules not laid
    out as a Llama-style decoder (``model.model.layers[i].self_attn.{q,k,v,o}_proj``, ...)."""
    model_type = getattr(model.config, "model_type", None)
    missing = _missing_modules(model)
    if model_type in SUPPORTED_MODEL_TYPES and not missing:
        return
    why = "its modules look Llama-style, but the methods are not tested on this model type"
    if missing:
        why = f"it has no {', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}"
    raise ModelUnavailableError(
        f"model {name!r}: {type(model).__name__} (model_type {model_type!r}) is not supported: {why}. "
        f"The methods hook Llama-style decoders; supported model types: {', '.join(SUPPORTED_MODEL_TYPES)} "
        "(Llama, Vicuna, Mistral, Qwen2/Qwen2.5 checkpoints). Fix: use a model of one of these families. "
        "Adding a family takes: modules model.model.embed_tokens, model.model.layers[i] with "
        "self_attn.{q,k,v,o}_proj, input_layernorm, post_attention_layernorm and mlp, model.model.rotary_emb, "
        "model.model.norm and model.lm_head (map differently named ones in ModelParts in "
        "entity_tracking/interventions.py and in entity_tracking/partial_forward.py), its model_type in "
        "SUPPORTED_MODEL_TYPES (entity_tracking/models.py), and a test with a tiny random model of the family "
        "(add it to entity_tracking/toy.py's build_model and to the models of tests/test_interventions.py and "
        "tests/test_path_patching.py)."
    )


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
        # the path as configured ({repo}/... for the shipped base): the record stays the same wherever the run is
        source.update({"repo": spec["path"] if kind == "local" else src, **kwargs, "resolved_commit": _commit(model)})
    elif kind == "gguf":
        from entity_tracking.gguf_import import convert_gguf

        try:
            directory = convert_gguf(name, spec["files"], spec["sha256"], Path(cache_dir))
        except ModelUnavailableError as err:
            if not spec.get("fallback"):
                raise
            src, kwargs = _fallback_kwargs(name, spec["fallback"], err)
            source.update({"fallback": spec["fallback"], "gguf_unavailable": str(err).split(". Fix:")[0]})
        else:
            src, kwargs = str(directory), {}
            source.update({"files": spec["files"], "sha256": spec["sha256"], "converted": str(directory)})
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


def _hub_unreachable(timeout: float = 3.0) -> str | None:
    """Why the Hugging Face hub cannot be used now (offline mode, or no answer within ``timeout`` s);
    ``None`` when it answers. One short request instead of the downloads' minute of retries."""
    from huggingface_hub import constants, get_session

    flags = (os.environ.get(v, "").upper() for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    if constants.is_offline_mode() or any(f in ("1", "ON", "YES", "TRUE") for f in flags):
        return "HF_HUB_OFFLINE is set"
    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as err:  # any transport error: name resolution, refused, timeout, proxy
        return f"{constants.ENDPOINT} does not answer ({type(err).__name__}: {err})"
    return None


def _fallback_kwargs(name: str, ref: dict[str, Any], cause: ModelUnavailableError) -> tuple[str, dict[str, Any]]:
    """``(repo, from_pretrained kwargs)`` of the hub fallback of a GGUF model whose files are unavailable
    (``cause``): from the local Hugging Face cache when it holds the revision, else from the hub when it
    answers; otherwise an error that leads with ``cause`` and its fix."""
    from huggingface_hub import constants, try_to_load_from_cache

    repo, kwargs = _hub_kwargs(ref, name, "fallback model")
    if isinstance(try_to_load_from_cache(repo, "config.json", revision=kwargs.get("revision")), str):
        log.warning("model %r: %s; loading the fallback %s from the local Hugging Face cache", name, cause, repo)
        return repo, {**kwargs, "local_files_only": True}
    offline = _hub_unreachable()
    if offline is None:
        log.warning("model %r: %s; downloading the fallback %s from the hub", name, cause, repo)
        return repo, kwargs
    raise ModelUnavailableError(
        f"{cause} The hub fallback needs the network: without these files the model is loaded from {repo} at revision "
        f"{ref['revision']}, which is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and cannot be "
        f"downloaded now: {offline}. To use it instead, run once with network access, or fill the "
        f"cache beforehand (hf download {repo} --revision {ref['revision']}) and point HF_HOME at it."
    ) from cause


def merge_adapter(name: str, model: PreTrainedModel, ref: dict[str, Any]) -> PreTrainedModel:
    """Apply a peft adapter and fold it into the weights (``merge_and_unload``).

    Merging first means every hook sees the fine-tuned weights (the original's LoRA bug:
    docs/differences.md, "Models and hooks").
    """
    from peft import PeftModel

    src, kwargs = _hub_kwargs(ref, name, "adapter")
    try:
        with peft_quietly():
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


_HASHED: dict[tuple[str, int, int], str] = {}  # (file, size, mtime) -> sha256: each file hashed once a process


def _sha256_once(file: Path) -> str:
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(file)
    return _HASHED[key]


def check_weights(name: str, directory: Path, expected: str, weights: str = "model.safetensors") -> None:
    """Refuse a checkpoint whose weights file does not have the expected sha256."""
    file = directory / weights
    if is_workflow_output(directory):
        fix = f"it is made by the workflow: delete the directory (rm -r {directory}) and rerun snakemake to remake it"
    else:
        fix = f"restore it (git checkout -- {directory}), or retrain it (--config retrain_base=true)"
    if not file.is_file():
        raise ModelUnavailableError(f"model {name!r}: {file} is missing. Fix: {fix}.")
    actual = _sha256_once(file)
    if actual != expected:
        raise ModelUnavailableError(
            f"model {name!r}: {file} has sha256 {actual}, expected {expected}: the checkpoint was modified or "
            f"corrupted. Fix: {fix}."
        )


def check_checkpoint(name: str, directory: Path) -> None:
    """A checkpoint that records its weights' sha256 in ``checkpoint.json`` (the shipped base, and every
    fine-tuned, retrained or converted checkpoint the DAG writes) is loaded only when they match."""
    record_file = directory / "checkpoint.json"
    if record_file.is_file():
        record = read_json(record_file)
        if isinstance(record, dict) and record.get("sha256"):
            check_weights(name, directory, record["sha256"], record.get("weights", "model.safetensors"))


def convert_model(name: str, spec: dict[str, Any], cache_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Rule convert_model: load a GGUF model (or its fallback) from its own ``spec`` once, on the CPU, and save
    it as a plain checkpoint."""
    loaded = load_model(name, spec, device="cpu", cache_dir=cache_dir)
    out_dir = Path(out_dir)
    loaded.model.save_pretrained(out_dir)
    loaded.tokenizer.save_pretrained(out_dir)
    source = {k: v for k, v in loaded.source.items() if k != "converted"}
    record = {"model": name, "source": portable(source)}  # no absolute paths of this machine
    record["sha256"] = sha256_file(out_dir / "model.safetensors")
    write_json(out_dir / "checkpoint.json", record)
    return record


def load_source(source: ModelSource) -> tuple[LoadedModel, Vocabulary]:
    """Load a model of the study (``model_specs.model_source``) and check its tokenizer against the task's words."""
    loaded = load_model(source.name, source.spec, device=source.device, cache_dir=source.cache_dir)
    vocab = check_vocabulary(loaded.tokenizer, load_objects(source.objects_file), source.name)
    return loaded, vocab


def write_model_card(
    source: ModelSource, label: str, role: str, base_model: str | None, example: dict[str, Any], out_json: str | Path
) -> dict[str, Any]:
    """Load and check a model; record its source, architecture and the positions of one example prompt."""
    loaded, vocab = load_source(source)
    enc = encode_records(loaded.tokenizer, [example], vocab)
    card = {
        "model": source.name,
        "label": label,
        "role": role,
        "base_model": base_model,
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
