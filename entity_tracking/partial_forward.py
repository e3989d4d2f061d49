"""Forward passes over part of a model: from a given layer, for the positions from a given token on.

Fast path patching reruns only what an intervention can change. :func:`clean_run` runs the
model once, layer by layer, and keeps each layer's input hidden states, attention output and
keys/values; :func:`run_suffix` then runs layers ``first_layer..`` on positions ``start..`` of
those inputs, attending to the stored keys/values of the positions before ``start``. With no
intervention it reproduces the full forward's logits (tests check this).

The decoder layers are the model's own modules (so hooks of :mod:`entity_tracking.interventions`
apply); only the loop over layers, the causal mask and the key/value cache are ours. Prompts of
one batch must have one length (the task's prompts do: every word is one token).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from entity_tracking.interventions import ModelParts, capture, chain, intervene


class _PrefixCache:
    """The one cache method attention modules call: prepend stored keys/values, or record them."""

    def __init__(self, keys: dict[int, torch.Tensor] | None = None, values: dict[int, torch.Tensor] | None = None):
        self.record = keys is None
        self.keys: dict[int, torch.Tensor] = {} if keys is None else keys
        self.values: dict[int, torch.Tensor] = {} if values is None else values

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        if self.record:
            self.keys[layer_idx], self.values[layer_idx] = key, value
            return key, value
        return torch.cat([self.keys[layer_idx], key], dim=2), torch.cat([self.values[layer_idx], value], dim=2)


@dataclass
class CleanRun:
    """Every per-layer quantity of one clean forward that the fast methods reuse. ``[B, T, ...]``."""

    resid: list[torch.Tensor]  # input hidden state of each layer [B, T, d]
    attn_out: list[torch.Tensor]  # attention output (o_proj output) of each layer [B, T, d]
    z: list[torch.Tensor]  # o_proj input per head [B, T, H, dh]
    keys: list[torch.Tensor]  # keys after rotary embedding [B, kv, T, dh]
    values: list[torch.Tensor]  # values [B, kv, T, dh]
    logits: torch.Tensor  # at the last position [B, vocab]

    def rows(self, index: torch.Tensor | slice) -> CleanRun:
        """The same quantities for rows ``index`` only."""
        pick = [self.resid, self.attn_out, self.z, self.keys, self.values]
        return CleanRun(*([t[index] for t in tensors] for tensors in pick), logits=self.logits[index])

    def slim(self) -> CleanRun:
        """Only what :func:`patched_logits` needs (no per-head ``z`` or attention outputs), to keep in memory."""
        return CleanRun(self.resid, [], [], self.keys, self.values, self.logits)

    @staticmethod
    def concat(runs: list[CleanRun]) -> CleanRun:
        """Rows of several runs (of prompts of one length) in one run."""
        fields = ("resid", "attn_out", "z", "keys", "values")
        lists = {f: [torch.cat(ts) for ts in zip(*(getattr(r, f) for r in runs), strict=True)] for f in fields}
        return CleanRun(**lists, logits=torch.cat([r.logits for r in runs]))


def _mask(q_len: int, start: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Additive causal mask ``[1, 1, q_len, start + q_len]`` for queries at positions ``start..``."""
    q = torch.arange(start, start + q_len, device=device)[:, None]
    k = torch.arange(start + q_len, device=device)[None, :]
    return torch.zeros(q_len, start + q_len, dtype=dtype, device=device).masked_fill(k > q, torch.finfo(dtype).min)[
        None, None
    ]


def _check_window(parts: ModelParts, length: int) -> None:
    window = getattr(parts.model.config, "sliding_window", None)
    layer_types = getattr(parts.model.config, "layer_types", None) or []
    if window and length > window and ("sliding_attention" in layer_types or not layer_types):
        raise ValueError(f"prompts of {length} tokens exceed the model's sliding window ({window})")


def run_suffix(
    parts: ModelParts,
    hidden: torch.Tensor,
    start: int,
    first_layer: int = 0,
    prefix_keys: list[torch.Tensor] | None = None,
    prefix_values: list[torch.Tensor] | None = None,
    record: _PrefixCache | None = None,
    blocked: dict[int, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Run layers ``first_layer..`` on ``hidden`` (``[B, S, d]``, the inputs of ``first_layer`` at
    positions ``start..start+S``) and return the final-norm hidden states ``[B, S, d]``.

    ``prefix_keys``/``prefix_values`` (indexed by layer, ``[B, kv, >=start, dh]``) hold the keys and
    values of positions ``0..start`` (later positions are ignored); ``record`` (with ``start == 0``)
    collects every layer's. ``blocked`` (attention knockout) maps a layer index to a boolean
    ``[B, S, start + S]``: query/key pairs whose attention score is set to the dtype's minimum before
    the softmax in that layer, for every head, on top of the causal mask.
    """
    model = parts.model.model
    s_len = hidden.shape[1]
    _check_window(parts, start + s_len)
    position_ids = torch.arange(start, start + s_len, device=hidden.device)[None]
    position_embeddings = model.rotary_emb(hidden, position_ids=position_ids)
    mask = _mask(s_len, start, hidden.dtype, hidden.device)
    if record is not None:
        cache = record
    else:
        cache = _PrefixCache(
            {i: prefix_keys[i][:, :, :start] for i in range(first_layer, parts.num_layers)} if prefix_keys else {},
            {i: prefix_values[i][:, :, :start] for i in range(first_layer, parts.num_layers)} if prefix_values else {},
        )
        if start == 0:
            cache = None  # type: ignore[assignment]
    for i in range(first_layer, parts.num_layers):
        layer_mask = mask
        if blocked is not None and i in blocked:
            layer_mask = mask.masked_fill(blocked[i][:, None].to(hidden.device), torch.finfo(hidden.dtype).min)
        hidden = parts.layers[i](
            hidden,
            attention_mask=layer_mask,
            position_ids=position_ids,
            position_embeddings=position_embeddings,
            cache=cache,
        )
    return model.norm(hidden)


@torch.no_grad()
def z_at(parts: ModelParts, ids: torch.Tensor, positions: torch.Tensor) -> list[torch.Tensor]:
    """Every layer's per-head ``z`` of prompts ``ids`` at ``positions`` (``[B]`` or ``[B, P]``): ``[B, P, H, dh]``
    per layer. Right padding is harmless: a token never attends to the padding after it."""
    store: dict[Any, torch.Tensor] = {}
    edits = {("z", i): capture(store, i, positions) for i in range(parts.num_layers)}
    with intervene(parts, edits):
        parts.model(input_ids=ids)
    return [store[i] for i in range(parts.num_layers)]


@torch.no_grad()
def clean_run(parts: ModelParts, input_ids: torch.Tensor, edits: dict[tuple[str, int], Any] | None = None) -> CleanRun:
    """One forward of equal-length prompts, keeping what :func:`run_suffix` and path patching reuse.

    ``edits`` (``z`` edits only) apply during the run: the kept quantities are those of the edited run.
    """
    model = parts.model
    edits = edits or {}
    if any(site != "z" for site, _ in edits):
        raise ValueError("clean_run applies z edits only")
    store: dict[Any, torch.Tensor] = {}
    resid: list[torch.Tensor] = []
    attn_out: list[torch.Tensor] = []
    handles = []
    for i, layer in enumerate(parts.layers):
        handles.append(layer.register_forward_pre_hook(lambda _m, args, i=i: resid.append(args[0].detach())))
        handles.append(layer.self_attn.o_proj.register_forward_hook(lambda _m, _a, out: attn_out.append(out.detach())))
    record = _PrefixCache()
    try:
        reads = {("z", i): chain(edits[("z", i)], capture(store, i)) if ("z", i) in edits else capture(store, i)
                 for i in range(parts.num_layers)}  # fmt: skip
        with intervene(parts, reads):
            hidden = model.model.embed_tokens(input_ids)
            normed = run_suffix(parts, hidden, 0, record=record)
    finally:
        for handle in handles:
            handle.remove()
    logits = model.lm_head(normed[:, -1])
    n = parts.num_layers
    return CleanRun(
        resid=resid,
        attn_out=attn_out,
        z=[store[i] for i in range(n)],
        keys=[record.keys[i] for i in range(n)],
        values=[record.values[i] for i in range(n)],
        logits=logits,
    )


class _ScatterCache:
    """Keys/values of every position, from a stored run; a run at some positions writes its own into them."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], positions: torch.Tensor):
        self.keys, self.values, self.positions = keys, values, positions

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any):
        index = self.positions[:, None, :, None].expand(-1, key.shape[1], -1, key.shape[3])
        return (
            self.keys[layer_idx].scatter(2, index, key),
            self.values[layer_idx].scatter(2, index, value),
        )


def run_at(
    parts: ModelParts, stored: CleanRun, positions: torch.Tensor, edits: dict[tuple[str, int], Any] | None = None
) -> torch.Tensor:
    """Rerun only the tokens at ``positions`` (``[B, P]``, increasing in each row) through every layer, with
    ``edits`` applied (their views are ``[B, P, ...]``: slot ``j`` is token ``positions[:, j]``), every other
    token keeping its keys and values of the ``stored`` run. Returns the final-norm hidden states ``[B, P, d]``.

    Exact when no other token's computation depends on these tokens, e.g. when every other token's
    attention output is fixed (mean ablation of every head outside the circuit's positions).
    """
    model = parts.model.model
    rows = torch.arange(positions.shape[0], device=positions.device)[:, None]
    hidden = stored.resid[0][rows, positions]
    t = stored.resid[0].shape[1]
    _check_window(parts, t)
    position_embeddings = model.rotary_emb(hidden, position_ids=positions)
    allowed = torch.arange(t, device=positions.device)[None, None, :] <= positions[:, :, None]  # [B, P, T]
    mask = torch.zeros(allowed.shape, dtype=hidden.dtype, device=hidden.device)
    mask = mask.masked_fill(~allowed, torch.finfo(hidden.dtype).min)[:, None]
    cache = _ScatterCache(stored.keys, stored.values, positions)
    with intervene(parts, edits or {}):
        for layer in parts.layers:
            hidden = layer(
                hidden, attention_mask=mask, position_ids=positions, position_embeddings=position_embeddings,
                cache=cache,
            )  # fmt: skip
    return model.norm(hidden)


SuffixEdits = Callable[[torch.Tensor, int], dict[tuple[str, int], Any]]
SuffixBlocks = Callable[[torch.Tensor, int], dict[int, torch.Tensor]]


def patched_logits(
    parts: ModelParts,
    clean: CleanRun,
    start: torch.Tensor,
    first_layer: int,
    edits: SuffixEdits,
    blocked: SuffixBlocks | None = None,
) -> torch.Tensor:
    """Last-token logits ``[B, vocab]`` of the clean prompts with edits at positions ``>= start``.

    An intervention at position ``p`` of layer ``l`` leaves every earlier position, and every
    layer below ``l``, as in the clean run, so only layers ``first_layer..`` need to run, on
    positions ``start[b]..`` of each row, over the clean run's cached keys and values. Rows are
    grouped by their start; ``edits(rows, s)`` returns the ``(site, layer)`` edits for rows ``rows``
    whose views begin at token ``s`` (so token ``p`` is at index ``p - s`` of the view).
    ``blocked(rows, s)``, when given, returns :func:`run_suffix`'s attention knockout masks for those
    rows (query index ``p - s``, key index ``p``). Gradients flow into whatever the edits close over
    (DCM's masks).
    """
    t = clean.resid[0].shape[1]
    device = clean.resid[0].device
    out: list[torch.Tensor | None] = [None] * len(start)
    for s in sorted(set(start.tolist())):
        rows = (start == s).nonzero()[:, 0].to(device)
        keys = [k[rows] if i >= first_layer else k for i, k in enumerate(clean.keys)]
        values = [v[rows] if i >= first_layer else v for i, v in enumerate(clean.values)]
        masks = blocked(rows, s) if blocked is not None else None
        with intervene(parts, edits(rows, s)):
            normed = run_suffix(parts, clean.resid[first_layer][rows, s:], s, first_layer, keys, values, blocked=masks)
        logits = parts.model.lm_head(normed[:, t - 1 - s])
        for j, r in enumerate(rows.tolist()):
            out[r] = logits[j]
    return torch.stack(out)  # type: ignore[arg-type]


def equal_length_batches(attention_mask: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Row indices in batches of prompts of one length (what :func:`clean_run` needs), in record order
    within each length; lengths in increasing order."""
    lengths = attention_mask.sum(1)
    out = []
    for length in sorted(set(lengths.tolist())):
        rows = (lengths == length).nonzero()[:, 0]
        out.extend(rows[i : i + batch_size] for i in range(0, len(rows), batch_size))
    return out
