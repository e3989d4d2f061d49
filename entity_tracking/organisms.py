"""Model organisms: a small Llama pre-trained here to track entities, and its fine-tuned variants.

The base is pre-trained once from a recipe (``models/organisms/base/recipe.json``) and shipped;
the DAG checks its hash and, on request (``retrain_base: true``), retrains it from the recipe.
The fine-tunes are made in the DAG from the base, mirroring the paper's models: a chat-tuned
full fine-tune (Vicuna's role), an arithmetic LoRA (Goat's role) and an arithmetic full
fine-tune (FLoat's role). Their corpora contain no box statements.
"""

from __future__ import annotations

import itertools
import logging
import random
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from entity_tracking.config import repo_path
from entity_tracking.corpora import (
    finetuning_corpus,
    marked_context,
    mixture_documents,
    pretraining_batch,
    scheduled,
)
from entity_tracking.dataset import LABELS, build_prompt, context_is_for_study, load_objects
from entity_tracking.io import read_json, sha256_file, write_json
from entity_tracking.toy import build_tokenizer
from entity_tracking.training import Schedule, lm_batch, peft_quietly, train, write_log

log = logging.getLogger(__name__)

WEIGHTS = "model.safetensors"


def organism_tokenizer() -> PreTrainedTokenizerFast:
    """The organisms' word-level tokenizer, saved with each checkpoint as a standard fast tokenizer."""
    return build_tokenizer("metaspace")


def save_checkpoint(model: Any, tokenizer: PreTrainedTokenizerFast, out_dir: Path, extra: dict[str, Any]) -> str:
    """Save model and tokenizer the standard way; record the weights' sha256 in ``checkpoint.json``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    peft = sys.modules.get("peft")
    if peft is not None and isinstance(model, peft.PeftModel):
        # only the attention projections are adapted: no embedding layer to save, so peft need not look up
        # the base's config.json (on the hub, since the base is recorded by name) to find out
        model.save_pretrained(out_dir, save_embedding_layers=False)
    else:
        model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    config_file = out_dir / "tokenizer_config.json"
    tok_config = read_json(config_file)
    tok_config["tokenizer_class"] = "PreTrainedTokenizerFast"  # not the model type's own tokenizer class
    for key in ("is_local", "local_files_only"):  # how the base was loaded (HF_HUB_OFFLINE), not the tokenizer
        tok_config.pop(key, None)
    write_json(config_file, tok_config)
    adapter_config = out_dir / "adapter_config.json"
    if adapter_config.exists():  # peft saves target_modules from a set: fix the order for byte-identical files
        adapter = read_json(adapter_config)
        adapter["target_modules"] = sorted(adapter["target_modules"])
        write_json(adapter_config, adapter)
    weights = out_dir / WEIGHTS
    if not weights.exists():
        weights = out_dir / "adapter_model.safetensors"
    digest = sha256_file(weights)
    write_json(out_dir / "checkpoint.json", {"weights": weights.name, "sha256": digest, **extra})
    return digest


def probe_cases(seed: int, num_boxes: int, size: int) -> list[tuple[list[str], list[str], int]]:
    """``size`` seeded (objects, labels, queried index) from the study's half of the context space: the contexts of
    the held-out probes (:func:`probe_set`, :func:`place_probes`, ``probes.form_accuracies``)."""
    rng, objects, out = random.Random(seed), load_objects(), []
    while len(out) < size:
        objs, labels = rng.sample(objects, num_boxes), rng.sample(LABELS, num_boxes)
        if context_is_for_study(objs, labels):
            out.append((objs, labels, rng.randrange(num_boxes)))
    return out


def probe_set(
    seed: int, num_boxes: int, size: int, recap: bool = False, ordinal: bool = False, marked: bool = False
) -> list[tuple[str, str]]:
    """Held-out probe prompts for monitoring training: study-half contexts never trained on.

    Not the evaluation set: a separate seed, used only to monitor training and to stop it. With
    ``recap`` the query is in the recap form (``... So: K``) instead of the task's form; with
    ``ordinal`` it asks for the object by its order (``... So: 3``); with ``marked`` each object's place is
    written before it (``corpora.marked_context``).
    """
    out = []
    for objs, labels, q in probe_cases(seed, num_boxes, size):
        prompt = build_prompt(objs, labels, labels[q])
        context = marked_context(objs, labels) if marked else prompt.context
        query = f" So: {q + 1}" if ordinal else f" So: {labels[q]}" if recap else prompt.text[prompt.context_end :]
        out.append((context + query, objs[q]))
    return out


def place_probes(seed: int, size: int) -> list[str]:
    """Held-out 7-box texts that end by naming the queried label's place (``... So: K 3``): the last token is the
    answer (:func:`last_token_accuracy`)."""
    return [
        f"{build_prompt(objs, labels, labels[q]).context} So: {labels[q]} {q + 1}"
        for objs, labels, q in probe_cases(seed, 7, size)
    ]


def probe_hits(model: Any, tokenizer: PreTrainedTokenizerFast, probes: list[tuple[str, str]]) -> torch.Tensor:
    """Per probe, whether the model's greedy next token is the answer (one right-padded batch)."""
    enc = tokenizer([p for p, _ in probes], return_tensors="pt", padding=True)
    last = enc["attention_mask"].sum(1) - 1
    answers = torch.tensor(tokenizer.convert_tokens_to_ids(["\u2581" + a for _, a in probes]))
    with torch.no_grad():
        logits = model(**enc).logits
    return logits[torch.arange(len(probes)), last].argmax(-1) == answers


def probe_accuracy(model: Any, tokenizer: PreTrainedTokenizerFast, probes: list[tuple[str, str]]) -> float:
    return probe_hits(model, tokenizer, probes).float().mean().item()


def last_token_accuracy(model: Any, tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> float:
    """How often the model predicts each text's last token from the tokens before it (texts of one length)."""
    ids = tokenizer(texts, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = model(input_ids=ids[:, :-1]).logits
    return (logits[:, -1].argmax(-1) == ids[:, -1]).float().mean().item()


def masked_probe_accuracy(
    model: Any, tokenizer: PreTrainedTokenizerFast, probes: list[tuple[str, str]], object_ids: torch.Tensor
) -> float:
    """Accuracy on task-form ``probes`` (all of one length) under :func:`answers_only_mask`: no position but the
    last sees the context's objects, so it measures how well the model answers without the label relay."""
    # with its answer appended, a probe's last token is the one answering position the mask knows
    enc = tokenizer([f"{p} {a}" for p, a in probes], return_tensors="pt")
    mask = answers_only_mask(enc, [True] * len(probes), object_ids, tokenizer.convert_tokens_to_ids("."))
    with torch.no_grad():
        logits = model(input_ids=enc["input_ids"], attention_mask=mask).logits
    return (logits[:, -2].argmax(-1) == enc["input_ids"][:, -1]).float().mean().item()


def _load_start(start: dict[str, Any]) -> Any:
    """The checkpoint a continuation recipe starts from, its weights checked against ``start.sha256``.

    ``start.made_by`` names the recipe that makes it when it is not shipped (a continuation of a continuation).
    """
    directory = repo_path(start["path"])
    make = f"; make it with tools/pretrain_base.py {start['made_by']} {start['path']}" if start.get("made_by") else ""
    if not (Path(directory) / WEIGHTS).exists():
        raise FileNotFoundError(f"the recipe's start checkpoint {directory}/{WEIGHTS} does not exist{make}")
    if sha256_file(Path(directory) / WEIGHTS) != start["sha256"]:
        raise ValueError(
            f"{directory}/{WEIGHTS} does not match the recipe's start.sha256; restore that checkpoint{make} "
            "(on the processor that made it: training is bit-reproducible only on the same arithmetic)"
        )
    return AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32)


def _llama_config(tokenizer: PreTrainedTokenizerFast, arch: dict[str, Any], layers: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch["hidden"],
        intermediate_size=arch["intermediate"],
        num_hidden_layers=layers,
        num_attention_heads=arch["heads"],
        num_key_value_heads=arch["heads"],
        max_position_embeddings=arch["max_positions"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        initializer_range=arch["init_std"],
    )


def grow(model: LlamaForCausalLM, seed: int) -> LlamaForCausalLM:
    """The same model with one more decoder layer on top that starts as the identity.

    The new layer is freshly initialised (from ``seed``) except its attention output and MLP down
    projections, which are zero, so the grown model computes exactly what ``model`` computed.
    """
    config = LlamaConfig(**{**model.config.to_dict(), "num_hidden_layers": model.config.num_hidden_layers + 1})
    torch.manual_seed(seed)
    grown = LlamaForCausalLM(config)
    grown.load_state_dict(model.state_dict(), strict=False)
    top = grown.model.layers[-1]
    torch.nn.init.zeros_(top.self_attn.o_proj.weight)
    torch.nn.init.zeros_(top.mlp.down_proj.weight)
    return grown


def answers_only_mask(
    batch: dict[str, torch.Tensor], boxed: list[bool], object_ids: torch.Tensor, period: int
) -> torch.Tensor:
    """A 4D additive attention mask (causal, padding) under which, in each box document (``boxed``), the
    objects of the context are visible only from the positions that answer a query (those followed by an
    object after the context), so that the answer must be fetched from the object by the answering token.
    """
    ids, pad = batch["input_ids"], batch["attention_mask"].bool()
    n, length = ids.shape
    allowed = torch.ones(length, length, dtype=torch.bool).tril()[None] & pad[:, None, :]  # [n, length, length]
    is_object = torch.isin(ids, object_ids)
    for i in (i for i in range(n) if boxed[i]):
        end = int((ids[i] == period).nonzero()[0])  # the context ends at its first period
        context_objects = is_object[i].clone()
        context_objects[end:] = False
        answering = torch.zeros(length, dtype=torch.bool)
        answering[end:-1] = is_object[i, end + 1 :]
        blocked = ~answering[:, None] & context_objects[None, :]
        blocked.fill_diagonal_(False)
        allowed[i] &= ~blocked
    mask = torch.zeros(n, 1, length, length)
    return mask.masked_fill(~allowed[:, None], torch.finfo(mask.dtype).min)


def pretrain_base(recipe: dict[str, Any], out_dir: str | Path) -> str:
    """Pre-train the base organism from ``recipe``; return the sha256 of its weights.

    With ``model.grow_at`` (a list of steps), a decoder layer is added on top at each of these
    steps (see :func:`grow`) and training continues with a fresh optimizer.
    With ``data.mixture`` (``{from_step, share, corpora}``), that share of each batch from ``from_step``
    on is box-free text of the fine-tuning corpora, scored whole (``corpora.mixture_documents``).
    With ``stop_from_step``, the stop rule (``stop_at_probe_accuracy``) fires only from that step on.
    With ``start`` (``{path, sha256}``), training continues from that checkpoint instead of a fresh model
    (used to probe a shipped base under other data; ``model`` is then ignored).
    With ``data.answers_only_mask`` (``{from_step, until_step, share}``), that share of the box documents
    is trained under :func:`answers_only_mask` from ``from_step`` until ``until_step`` (none: the end);
    ``data.objects_seen_by_answers_until: N`` is the same for every box document until step ``N``.
    """
    out_dir = Path(out_dir)
    torch.manual_seed(recipe["seed"])
    tokenizer = organism_tokenizer()
    arch = recipe.get("model", {})
    if recipe.get("start"):
        model = _load_start(recipe["start"])
    else:
        model = LlamaForCausalLM(_llama_config(tokenizer, arch, arch["layers"]))
    schedule = Schedule(**recipe["schedule"])
    rng, objects = random.Random(recipe["seed"]), load_objects()
    period = tokenizer.convert_tokens_to_ids(".")

    object_ids = torch.tensor(tokenizer.convert_tokens_to_ids(["\u2581" + o for o in objects]))
    mixture = recipe["data"].get("mixture")  # optional: box-free text once binding has emerged
    mix_rng = random.Random(recipe["seed"] + 3)  # its own stream: the box documents stay the same

    def next_batch(step: int) -> dict[str, torch.Tensor]:
        # box documents are scored after their context (the context itself is unpredictable)
        texts = pretraining_batch(rng, objects, step, schedule.batch_size, recipe["data"])
        after: list[int | None] = [period] * len(texts)
        if mixture:  # box-free documents take the first places of the batch and are scored whole
            mixed = mixture_documents(mix_rng, objects, step, len(texts), mixture)
            texts[: len(mixed)], after[: len(mixed)] = mixed, [None] * len(mixed)
        batch = lm_batch(tokenizer, texts, after)
        boxed = [a is not None for a in after]
        if step < recipe["data"].get("objects_seen_by_answers_until", 0):
            batch["attention_mask"] = answers_only_mask(batch, boxed, object_ids, period)
        elif masking and masking["from_step"] <= step < (masking.get("until_step") or schedule.steps):
            boxed = [b and mask_rng.random() < masking["share"] for b in boxed]
            if any(boxed):
                batch["attention_mask"] = answers_only_mask(batch, boxed, object_ids, period)
        return batch

    masking = recipe["data"].get("answers_only_mask")
    mask_rng = random.Random(recipe["seed"] + 5)  # its own stream too
    probes = probe_set(recipe["seed"] + 1, 7, recipe["probe_size"])
    recap_probes = probe_set(recipe["seed"] + 2, 7, recipe["probe_size"] // 4, recap=True)
    extra_probes: dict[str, Any] = {}  # optional monitors: ordinal queries, and the task under the mask
    if recipe["data"].get("ordinal_share"):
        ordinal_probes = probe_set(recipe["seed"] + 4, 7, recipe["probe_size"] // 4, ordinal=True)
        extra_probes["probe_ordinal7"] = lambda m: probe_accuracy(m, tokenizer, ordinal_probes)
    if masking:
        extra_probes["probe_masked7"] = lambda m: masked_probe_accuracy(m, tokenizer, probes, object_ids)
    if recipe["data"].get("place_share"):
        places = place_probes(recipe["seed"] + 6, recipe["probe_size"] // 4)
        extra_probes["probe_place7"] = lambda m: last_token_accuracy(m, tokenizer, places)
    if recipe["data"].get("marker_share"):  # the task with each object's place written before it
        marked_probes = probe_set(recipe["seed"] + 1, 7, recipe["probe_size"], marked=True)
        extra_probes["probe_marked7"] = lambda m: probe_accuracy(m, tokenizer, marked_probes)
        if masking:
            extra_probes["probe_marked_masked7"] = lambda m: masked_probe_accuracy(
                m, tokenizer, marked_probes, object_ids
            )
    target = recipe.get("stop_at_probe_accuracy")
    stop = None
    if target is not None:  # the stop rule may wait for a step (e.g. until the mixture has been seen)
        stop_from = recipe.get("stop_from_step", 0)
        stop = lambda step, scores: scores["probe_acc7"] >= target and step >= stop_from  # noqa: E731
    growth = list(arch.get("grow_at", []))
    bounds = [0, *growth, schedule.steps]
    rows: list[dict[str, Any]] = []
    for phase, (first, end) in enumerate(itertools.pairwise(bounds)):
        if phase:
            model = grow(model, recipe["seed"] + 100 * phase)
            log.info("step %d: grew to %d layers", first, model.config.num_hidden_layers)
        rows += train(
            model,
            tokenizer,
            next_batch,
            schedule,
            None,
            evaluate=lambda m=model: {
                "probe_acc7": probe_accuracy(m, tokenizer, probes),
                "probe_recap7": probe_accuracy(m, tokenizer, recap_probes),
                **{name: score(m) for name, score in extra_probes.items()},
            },
            eval_every=lambda step: int(scheduled(recipe["probe_every"], step)),
            desc=f"pre-train base ({model.config.num_hidden_layers} layers)",
            stop=stop,
            first_step=first,
            end_step=end,
        )
        if rows[-1]["step"] + 1 < end:  # stopped at the target accuracy
            break
    write_log(rows, out_dir / "train_log.csv")
    write_json(out_dir / "recipe.json", recipe)
    return save_checkpoint(model, tokenizer, out_dir, {"recipe": "recipe.json", "steps": rows[-1]["step"] + 1})


def finetune(base_dir: str | Path, settings: dict[str, Any], out_dir: str | Path) -> str:
    """Fine-tune the checkpoint in ``base_dir`` (any Llama/Mistral/Qwen2-style model with a fast tokenizer) on a
    corpus without box statements (full or LoRA)."""
    out_dir = Path(out_dir)
    torch.manual_seed(settings["seed"])
    tokenizer = PreTrainedTokenizerFast.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    # peft's README names the base by these (base_model, a tag): its directory's name, not its absolute path
    model.name_or_path = model.config._name_or_path = Path(base_dir).name
    if settings["method"] == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=settings["lora_rank"],
            lora_alpha=settings["lora_alpha"],
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        )
        with peft_quietly():
            model = get_peft_model(model, lora)
        # record the base by name, not by absolute path, so the saved adapter is machine-independent
        model.peft_config["default"].base_model_name_or_path = Path(base_dir).name
    corpus = finetuning_corpus(settings["corpus"], settings["seed"], settings["steps"] * settings["batch_size"])
    schedule = Schedule(
        steps=settings["steps"],
        batch_size=settings["batch_size"],
        lr=settings["lr"],
        warmup=settings.get("warmup", 20),
        seed=settings["seed"],
    )
    bs = schedule.batch_size
    train(
        model,
        tokenizer,
        lambda s: lm_batch(tokenizer, corpus[s * bs : (s + 1) * bs]),
        schedule,
        out_dir / "train_log.csv",
        desc=f"fine-tune ({settings['corpus']}, {settings['method']})",
    )
    return save_checkpoint(model, tokenizer, out_dir, {"finetune": settings, "base_sha256": base_sha(base_dir)})


def base_sha(directory: str | Path) -> str:
    return sha256_file(Path(directory) / WEIGHTS)
