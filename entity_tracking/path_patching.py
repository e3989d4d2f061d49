"""Path patching: the four stages that find the entity-tracking circuit.

Score of a sender head ``(l*, h*)`` for a stage with receivers ``R``, composition ``c`` (``q`` or
``v``) and position ``p0`` (the last token, the query label, or the query label's occurrence in
the context):

* **Run 1** (clean input): every head at every position ``>= p0`` is frozen to its clean output,
  except the sender at ``p0``, which gets its output from the counterfactual run (at the
  counterfactual's own position of that class). The sender's effect reaches ``p0``'s residual
  stream and MLPs only. Without receivers (stage 1), the logits of this run are scored; otherwise
  the receivers' ``c`` projections at ``p0`` are read.
* **Run 2** (clean input, receivers only): the receivers' ``c`` projections at ``p0`` are set to
  their Run-1 values and the model runs freely.
* Scores, per example and averaged over the examples: the paper's metric ``(p - p_clean) / p_clean``
  of the correct answer's probability (more negative = more important), and the change of its logit.
  The per-example scores (``[N, layers, heads]``, stored beside the means) make every selection a
  statistical statement: a stage selects its top-k only among heads beyond noise, and a stage with
  none has no signal and stops the chain (:mod:`entity_tracking.selection`, :func:`discover`).

Two implementations give the same numbers (tests: to 1e-5 in float32):

``reference``  the definition above, two full forward passes per sender and batch.
``fast``       exact shortcuts: in Run 1 only position ``p0`` differs from the clean run (every
               later position's attention is frozen), so Run 1 is the sender's change pushed
               through the MLPs of that one position, for all heads of a layer at once; Run 2
               starts at the lowest receiver layer above the sender and at position ``p0``, over
               the clean run's cached hidden states and keys/values; senders at or above the
               highest receiver layer cannot reach a receiver and score exactly 0.

The structure-reader stage's counterfactual position (a random box label of the counterfactual
prompt) is drawn once, in the dataset (unlike the original: docs/differences.md, "Data").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from entity_tracking.interventions import ModelParts, capture, chain, intervene, kv_head, patch, replace_where
from entity_tracking.model_specs import ModelSource
from entity_tracking.partial_forward import CleanRun, clean_run, run_suffix, z_at
from entity_tracking.selection import SETTINGS_KEYS, StageTest, ranked, stage_status, stage_test
from entity_tracking.tokenization import Encoded, Vocabulary, counterfactual_prompt, encode_prompts, encode_records

log = logging.getLogger(__name__)

Head = tuple[int, int]
STAGES: tuple[str, ...] = ("value_fetcher", "pos_transmitter", "pos_detector", "struct_reader")
# stage -> (composition with the receivers, clean position field of Encoded)
STAGE_SPEC: dict[str, tuple[str | None, str]] = {
    "value_fetcher": (None, "last"),
    "pos_transmitter": ("q", "last"),
    "pos_detector": ("v", "query_label"),
    "struct_reader": ("v", "prev_query_label"),
}
METHODS = ("fast", "reference")


@dataclass
class PathPatchingData:
    """Clean prompts, their counterfactual partners, and the counterfactual position of each stage."""

    clean: Encoded
    corrupt: Encoded
    corrupt_random_label: torch.Tensor  # [N] the label position of the stored random segment

    def __len__(self) -> int:
        return len(self.clean)

    def positions(self, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(clean p0, counterfactual position)`` of a stage, each ``[N]``."""
        field = STAGE_SPEC[stage][1]
        clean = getattr(self.clean, field)
        if stage == "struct_reader":
            return clean, self.corrupt_random_label
        return clean, getattr(self.corrupt, field)


def prepare_data(tokenizer: Any, records: Sequence[dict[str, Any]], vocab: Vocabulary) -> PathPatchingData:
    """Encode path-patching records (they carry stored counterfactual partners)."""
    missing = [r["id"] for r in records if "counterfactual" not in r]
    if missing:
        raise ValueError(f"records {missing[:3]} have no counterfactual partner; use the discovery split")
    clean = encode_records(tokenizer, records, vocab)
    corrupt = encode_prompts(tokenizer, [counterfactual_prompt(r) for r in records], vocab)
    lengths = set(clean.attention_mask.sum(1).tolist()) | set(corrupt.attention_mask.sum(1).tolist())
    if len(lengths) != 1:
        raise ValueError(
            f"path patching needs prompts of one length; these have {sorted(lengths)} tokens. "
            "Fix: use a dataset with one number of boxes and a tokenizer that keeps every word whole."
        )
    segment = torch.tensor([r["counterfactual"]["random_segment"] for r in records])
    random_label = corrupt.labels.gather(1, segment[:, None])[:, 0]
    return PathPatchingData(clean, corrupt, random_label)


def _receiver_sites(parts: ModelParts, receivers: Sequence[Head], comp: str) -> dict[int, list[int]]:
    """Receiver heads per layer at the composition's site (kv heads for ``v``, once per shared kv head)."""
    sites: dict[int, list[int]] = {}
    for layer, head in receivers:
        h = kv_head(parts, head) if comp in ("k", "v") else head
        if h not in sites.setdefault(layer, []):
            sites[layer].append(h)
    return {layer: sorted(hs) for layer, hs in sorted(sites.items())}


def _answer_stats(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability and logit of the answer token: ``[..., B]`` from logits ``[..., B, vocab]``."""
    logits = logits.float()
    index = labels.expand(*logits.shape[:-2], -1)[..., None]
    return logits.softmax(-1).gather(-1, index)[..., 0], logits.gather(-1, index)[..., 0]


@dataclass
class _Batch:
    ids: torch.Tensor
    labels: torch.Tensor
    p0: torch.Tensor
    corrupt_z: list[torch.Tensor]


def _reference_batch(
    parts: ModelParts, batch: _Batch, receivers: dict[int, list[int]], comp: str | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example scores of the two metrics, ``[B, L, H]`` each, by two full forwards per sender."""
    model, n_layers, n_heads = parts.model, parts.num_layers, parts.heads
    store: dict[Any, torch.Tensor] = {}
    with intervene(parts, {("z", i): capture(store, i) for i in range(n_layers)}):
        clean_logits = model(input_ids=batch.ids).logits[:, -1]
    p_clean, l_clean = _answer_stats(clean_logits, batch.labels)
    clean_z = [store[i] for i in range(n_layers)]
    t = batch.ids.shape[1]
    frozen = (torch.arange(t, device=batch.ids.device)[None, :] >= batch.p0[:, None])[:, :, None]  # [B, T, 1]
    prob = torch.zeros(len(batch.ids), n_layers, n_heads, dtype=torch.float64)
    logit = torch.zeros_like(prob)
    for sl in range(n_layers):
        for sh in range(n_heads):
            heads = torch.tensor([sh])
            edits = {("z", i): replace_where(frozen, clean_z[i]) for i in range(n_layers)}
            edits[("z", sl)] = chain(edits[("z", sl)], patch(batch.p0, heads, batch.corrupt_z[sl][:, heads]))
            run1: dict[Any, torch.Tensor] = {}
            for layer in receivers:
                edits[(comp, layer)] = capture(run1, layer, batch.p0)  # type: ignore[index]
            with intervene(parts, edits):
                logits = model(input_ids=batch.ids).logits[:, -1]
            if receivers:
                edits2 = {
                    (comp, layer): patch(batch.p0, torch.tensor(hs), run1[layer][:, 0, hs])
                    for layer, hs in receivers.items()
                }
                with intervene(parts, edits2):  # type: ignore[arg-type]
                    logits = model(input_ids=batch.ids).logits[:, -1]
            p, lg = _answer_stats(logits, batch.labels)
            prob[:, sl, sh] = ((p - p_clean) / p_clean).double().cpu()
            logit[:, sl, sh] = (lg - l_clean).double().cpu()
    return prob, logit


def _site_output(parts: ModelParts, comp: str, layer: int, x: torch.Tensor) -> torch.Tensor:
    """The receivers' projection (``q`` or ``v``) of residual stream vectors ``x``, per head."""
    block = parts.layers[layer]
    out = parts.module(comp, layer)(block.input_layernorm(x))
    return out.view(*x.shape[:-1], parts.site_heads(comp), parts.head_dim)


def _fast_batch(
    parts: ModelParts,
    batch: _Batch,
    receivers: dict[int, list[int]],
    comp: str | None,
    max_rows: int,
    cr: CleanRun,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-example scores of the two metrics, ``[B, L, H]`` each, with the exact shortcuts."""
    model, n_layers, n_heads = parts.model, parts.num_layers, parts.heads
    b = len(batch.ids)
    rows = torch.arange(b, device=batch.ids.device)
    p_clean, l_clean = _answer_stats(cr.logits, batch.labels)
    prob = torch.zeros(b, n_layers, n_heads, dtype=torch.float64)
    logit = torch.zeros_like(prob)
    top = max(receivers) if receivers else n_layers
    eye = torch.eye(n_heads, dtype=torch.bool, device=batch.ids.device)
    for sl in range(top):  # a sender at or above every receiver's layer scores exactly 0
        # Run 1, for all heads of the layer at once: only position p0 changes.
        z0 = cr.z[sl][rows, batch.p0]  # [B, H, dh]
        zp = torch.where(eye[:, None, :, None], batch.corrupt_z[sl][None], z0[None])  # [H_s, B, H, dh]
        block = parts.layers[sl]
        x = cr.resid[sl][rows, batch.p0][None] + block.self_attn.o_proj(zp.flatten(-2))
        x = x + block.mlp(block.post_attention_layernorm(x))
        values: dict[int, torch.Tensor] = {}
        for layer in range(sl + 1, top + 1 if receivers else n_layers):
            if layer in receivers:
                values[layer] = _site_output(parts, comp, layer, x)[:, :, receivers[layer]]  # type: ignore[arg-type]
            if layer == top and receivers:
                break
            nxt = parts.layers[layer]
            x = x + cr.attn_out[layer][rows, batch.p0][None]
            x = x + nxt.mlp(nxt.post_attention_layernorm(x))
        if not receivers:
            logits = model.lm_head(model.model.norm(x))  # [H_s, B, vocab]
        else:
            logits = _run2(parts, batch, cr, comp, receivers, values, max_rows)  # type: ignore[arg-type]
        p, lg = _answer_stats(logits, batch.labels)
        prob[:, sl] = ((p - p_clean) / p_clean).T.double().cpu()  # [H_s, B] -> [B, H]
        logit[:, sl] = (lg - l_clean).T.double().cpu()
    return prob, logit


def _run2(
    parts: ModelParts,
    batch: _Batch,
    cr: CleanRun,
    comp: str,
    receivers: dict[int, list[int]],
    values: dict[int, torch.Tensor],
    max_rows: int,
) -> torch.Tensor:
    """Logits ``[H_s, B, vocab]`` with the receivers patched; one suffix run per start position."""
    n_s, b = next(iter(values.values())).shape[:2]
    first = min(values)
    t = batch.ids.shape[1]
    out = torch.empty(n_s, b, parts.model.lm_head.out_features, device=batch.ids.device)
    for start in sorted(set(batch.p0.tolist())):
        idx = (batch.p0 == start).nonzero()[:, 0]
        per = max(1, max_rows // len(idx))
        for s0 in range(0, n_s, per):
            senders = torch.arange(s0, min(n_s, s0 + per))
            n = len(senders) * len(idx)

            def rep(x: torch.Tensor, idx: torch.Tensor = idx, k: int = len(senders)) -> torch.Tensor:
                return x[idx].repeat(k, *[1] * (x.dim() - 1))

            hidden = rep(cr.resid[first][:, start:])
            edits = {
                (comp, layer): patch(
                    torch.zeros(n, dtype=torch.long),
                    torch.tensor(receivers[layer]),
                    v[senders][:, idx].flatten(0, 1),
                )
                for layer, v in values.items()
            }
            with intervene(parts, edits):
                normed = run_suffix(
                    parts,
                    hidden,
                    start,
                    first,
                    [rep(k[:, :, :start]) if i >= first else k for i, k in enumerate(cr.keys)],
                    [rep(v[:, :, :start]) if i >= first else v for i, v in enumerate(cr.values)],
                )
            logits = parts.model.lm_head(normed[:, t - 1 - start])
            out[s0 : s0 + len(senders), idx] = logits.view(len(senders), len(idx), -1)
    return out


@dataclass
class PreparedBatch:
    """What every stage of the fast method reuses for one batch: the clean run and the
    counterfactual ``z`` at the three counterfactual position kinds (last, query label, random label)."""

    rows: slice
    clean: CleanRun
    corrupt_z: list[torch.Tensor]  # per layer [B, 3, H, dh]


CORRUPT_KIND = {"value_fetcher": 0, "pos_transmitter": 0, "pos_detector": 1, "struct_reader": 2}


def prepare_batch(parts: ModelParts, data: PathPatchingData, rows: slice) -> PreparedBatch:
    device = next(parts.model.parameters()).device
    positions = torch.stack(
        [data.corrupt.last[rows], data.corrupt.query_label[rows], data.corrupt_random_label[rows]], dim=1
    )
    with torch.no_grad():
        clean = clean_run(parts, data.clean.input_ids[rows].to(device))
        corrupt = z_at(parts, data.corrupt.input_ids[rows].to(device), positions.to(device))
    return PreparedBatch(rows, clean, corrupt)


def stage_scores(
    parts: ModelParts,
    data: PathPatchingData,
    stage: str,
    receivers: Sequence[Head],
    method: str = "fast",
    batch_size: int = 100,
    max_rows: int = 256,
    prepared: Sequence[PreparedBatch] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-example scores ``{"prob": [N, L, H], "logit": [N, L, H]}`` (float32) of every sender head for one
    stage; the stage's score of a head is their mean over the examples.

    ``prepared`` (fast method only): the batches' clean and counterfactual runs, computed once for
    all stages by :func:`prepare_batch`; without it each stage recomputes them.
    """
    if method not in METHODS:
        raise ValueError(f"unknown path-patching method {method!r}; use one of {METHODS}")
    comp, _ = STAGE_SPEC[stage]
    if (comp is None) != (not receivers):
        raise ValueError(f"stage {stage!r} {'takes no' if comp is None else 'needs'} receivers")
    sites = _receiver_sites(parts, receivers, comp) if comp else {}
    device = next(parts.model.parameters()).device
    p0_all, pc_all = data.positions(stage)
    prob: list[torch.Tensor] = []
    logit: list[torch.Tensor] = []
    slices = [slice(s, s + batch_size) for s in range(0, len(data), batch_size)]
    for i, rows in enumerate(tqdm(slices, desc=f"{stage} ({method})", unit="batch", leave=False, disable=None)):
        ids = data.clean.input_ids[rows].to(device)
        with torch.no_grad():
            if method == "reference":
                corrupt_z = [
                    z[:, 0] for z in z_at(parts, data.corrupt.input_ids[rows].to(device), pc_all[rows].to(device))
                ]
            else:
                prep = prepared[i] if prepared is not None else prepare_batch(parts, data, rows)
                if prep.rows != rows:
                    raise ValueError("prepared batches do not match the batch size")
                corrupt_z = [z[:, CORRUPT_KIND[stage]] for z in prep.corrupt_z]
            batch = _Batch(ids, data.clean.answer_ids[rows].to(device), p0_all[rows].to(device), corrupt_z)
            if method == "reference":
                dp, dl = _reference_batch(parts, batch, sites, comp)
            else:
                dp, dl = _fast_batch(parts, batch, sites, comp, max_rows, prep.clean)
        prob.append(dp)
        logit.append(dl)
    return {"prob": torch.cat(prob).float(), "logit": torch.cat(logit).float()}


StageScorer = Callable[[str, list[Head]], dict[str, torch.Tensor]]


def discover(
    score_stage: StageScorer, topk: dict[str, int], metric: str, selection: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The four stages in order, each scored through the previous stage's selected heads (its receivers).

    ``score_stage(stage, receivers)`` gives a stage's per-example scores (:func:`stage_scores`). A stage
    selects at most ``topk[stage]`` heads beyond noise (:mod:`entity_tracking.selection`); a stage with
    none has no signal and the later stages are not run. Per stage: ``examples`` (per-example scores, or
    None when not run), ``receivers``, ``top``, ``test`` (its :class:`~entity_tracking.selection.StageTest`),
    ``status`` and ``reason``.
    """
    results: dict[str, dict[str, Any]] = {}
    tests: dict[str, StageTest | None] = {}
    receivers: list[Head] = []
    stopped = False
    for stage in STAGES:
        if stopped:
            tests[stage] = None
            results[stage] = {"examples": None, "receivers": [], "top": [], "test": None}
        else:
            examples = score_stage(stage, receivers)
            test = stage_test(examples[metric], receivers, selection)
            tests[stage] = test
            top = ranked(test, topk[stage])
            results[stage] = {"examples": examples, "receivers": receivers, "top": top, "test": test}
            stopped = not top
            receivers = top
        status, reason = stage_status(tests, stage)
        results[stage].update(status=status, reason=reason)
        log.info("%s: %s (%s); top-%d %s", stage, status, reason, topk[stage], results[stage]["top"])
    return results


def path_patching(
    parts: ModelParts,
    data: PathPatchingData,
    topk: dict[str, int],
    metric: str = "prob",
    method: str = "fast",
    batch_size: int = 100,
    max_rows: int = 256,
    share_clean_runs: bool = True,
    selection: dict[str, Any] | None = None,
) -> dict[str, dict[str, Any]]:
    """The four stages on a model (:func:`discover`); ``selection`` is the noise guard (default: config.yaml's).

    ``share_clean_runs`` (fast method): compute each batch's clean and counterfactual runs once for
    all four stages and keep them in memory (every layer's hidden states, keys and values).
    """
    prepared = None
    if method == "fast" and share_clean_runs:
        slices = [slice(s, s + batch_size) for s in range(0, len(data), batch_size)]
        progress = tqdm(slices, desc="clean runs", leave=False, disable=None)
        prepared = [prepare_batch(parts, data, rows) for rows in progress]

    def score(stage: str, receivers: list[Head]) -> dict[str, torch.Tensor]:
        return stage_scores(parts, data, stage, receivers, method, batch_size, max_rows, prepared)

    return discover(score, topk, metric, selection or DEFAULT_SELECTION)


DEFAULT_SELECTION: dict[str, Any] = {"alpha": 0.05, "correction": "holm", "min_effect": 0.005}


def selection_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The noise guard's settings (``circuit.selection`` without the bootstrap's)."""
    return {k: settings["selection"][k] for k in SETTINGS_KEYS}


def stage_summary(result: dict[str, Any]) -> dict[str, Any]:
    """A stage's entry of ``path_patching.json``: status, receivers, the selected heads with their statistics,
    and counts (nothing but the status and reason for a stage that was not run)."""
    out: dict[str, Any] = {"status": result["status"], "reason": result["reason"]}
    test: StageTest | None = result["test"]
    if test is None:
        return out
    examples = result["examples"]
    means = {m: examples[m].double().mean(0) for m in ("prob", "logit")}
    out |= {
        "receivers": [list(h) for h in result["receivers"]],
        "eligible": int(test.eligible.sum()),
        "qualifying": int(test.qualifies.sum()),
        "top": [list(h) for h in result["top"]],
        "top_scores": {m: [float(means[m][h]) for h in result["top"]] for m in ("prob", "logit")},
        "top_stats": [test.head(h) for h in result["top"]],
        "min": {m: float(means[m].min()) for m in ("prob", "logit")},
        "nonzero": int((means["prob"] != 0).sum()),
    }
    return out


def run_path_patching(
    source: ModelSource,
    data_file: str | Path,
    out_tensors: str | Path,
    out_json: str | Path,
    settings: dict[str, Any],
    selection: dict[str, Any],
) -> dict[str, Any]:
    """Rule path_patching: the four stages on the discovery split; per-example and mean score tensors, and a
    JSON summary with every stage's status (signal, no signal, not run). ``settings``: the model's
    ``circuit.path_patching``; ``selection``: the noise guard's (:func:`selection_settings`)."""
    from entity_tracking.io import read_jsonl, sha256_file, write_json, write_safetensors
    from entity_tracking.models import load_source

    name = source.name
    loaded, vocab = load_source(source)
    parts = ModelParts.of(loaded.model)
    data = prepare_data(loaded.tokenizer, read_jsonl(data_file), vocab)
    results = path_patching(
        parts,
        data,
        settings["topk"],
        settings["metric"],
        settings["method"],
        settings["batch_size"],
        settings["max_rows"],
        settings["share_clean_runs"],
        selection,
    )
    tensors = {}
    for stage in STAGES:
        examples = results[stage]["examples"]
        if examples is None:
            continue
        for m in ("prob", "logit"):
            tensors[f"{stage}.{m}"] = examples[m].double().mean(0).float()
            tensors[f"{stage}.{m}.examples"] = examples[m]
    meta = {
        "model": name,
        "layout": "{stage}.{metric}: [layer, head] mean; {stage}.{metric}.examples: [example, layer, head]",
    }
    write_safetensors(out_tensors, tensors, meta)
    summary = {
        "model": name,
        "records": len(data),
        "data_sha256": sha256_file(data_file),
        "settings": settings,
        "selection": selection,
        "metrics": {
            "prob": "mean over examples of (p - p_clean) / p_clean, p = probability of the correct answer",
            "logit": "mean over examples of the change in the correct answer's logit",
        },
        "stages": {
            stage: {
                "composition": STAGE_SPEC[stage][0],
                "position": STAGE_SPEC[stage][1],
                **stage_summary(results[stage]),
            }
            for stage in STAGES
        },
    }
    write_json(out_json, summary)
    return summary
