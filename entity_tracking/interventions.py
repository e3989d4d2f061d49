"""The one intervention layer every method uses: per-head reads and writes inside attention.

Four sites per layer, each viewed per head:

``z``  the input of ``o_proj`` (the attention-weighted values, before the output projection),
       ``[batch, T, heads, head_dim]``. Editing it changes that head's contribution to the residual
       stream; the edited tensor goes through the model's own ``o_proj`` module, so biases and
       merged adapters are always kept (unlike the original: docs/differences.md, "Models and hooks").
``q``  the output of ``q_proj`` (before rotary embeddings), ``[batch, T, heads, head_dim]``.
``k``, ``v``  the outputs of ``k_proj`` / ``v_proj``, ``[batch, T, kv_heads, head_dim]``.

Grouped-query attention (Mistral, Qwen2, Llama-3): several query heads share one key/value head
(query head ``h`` reads kv head ``h // (heads // kv_heads)``). A query head has no value of its
own, so "patching the value of query head h" patches its kv head, and every query head of that
group sees the patched value. :func:`kv_head` gives the mapping; path patching patches each
shared kv head once. With ``kv_heads == heads`` (Llama-7B) this is the per-head patching of the
paper. Biases of ``q_proj``/``k_proj``/``v_proj`` (Qwen2) are part of the edited outputs.

An edit is a function ``fn(view) -> view | None`` called on the per-head view of one site of one
layer, for the whole batch at once; returning ``None`` leaves the tensor unchanged (a read). The
helpers below build the edits the methods need, vectorised over batch, heads and positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

Edit = Callable[[torch.Tensor], torch.Tensor | None]
SITES = ("z", "q", "k", "v")


class UnsupportedModelError(ValueError):
    """The model's modules are not laid out as a Llama/Mistral/Qwen2-style decoder."""


@dataclass(frozen=True)
class ModelParts:
    """The modules of a Llama/Mistral/Qwen2-style causal LM, and its head geometry."""

    model: Any
    layers: list[Any]
    heads: int
    kv_heads: int
    head_dim: int

    @classmethod
    def of(cls, model: Any) -> ModelParts:
        inner = getattr(model, "model", None)
        layers = getattr(inner, "layers", None)
        needed = ("input_layernorm", "post_attention_layernorm", "self_attn", "mlp")
        if layers is None or not all(hasattr(layers[0], n) for n in needed) or not hasattr(inner, "rotary_emb"):
            raise UnsupportedModelError(
                f"{type(model).__name__} is not a Llama/Mistral/Qwen2-style decoder (model.model.layers[i] with "
                "self_attn.{q,k,v,o}_proj, mlp, input/post_attention layernorms, and model.model.rotary_emb). "
                "Fix: use a model of one of these families."
            )
        cfg = model.config
        heads = cfg.num_attention_heads
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
        return cls(model, list(layers), heads, getattr(cfg, "num_key_value_heads", None) or heads, head_dim)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def module(self, site: str, layer: int) -> Any:
        attn = self.layers[layer].self_attn
        return {"z": attn.o_proj, "q": attn.q_proj, "k": attn.k_proj, "v": attn.v_proj}[site]

    def site_heads(self, site: str) -> int:
        return self.kv_heads if site in ("k", "v") else self.heads


def kv_head(parts: ModelParts, head: int) -> int:
    """The key/value head that query head ``head`` reads."""
    return head // (parts.heads // parts.kv_heads)


@contextmanager
def intervene(parts: ModelParts, edits: dict[tuple[str, int], Edit]) -> Iterator[None]:
    """Apply ``edits`` (keyed by ``(site, layer)``) during every forward inside the ``with`` block."""
    handles = []
    try:
        for (site, layer), fn in edits.items():
            if site not in SITES:
                raise ValueError(f"unknown site {site!r}; sites are {SITES}")
            module = parts.module(site, layer)
            n_heads = parts.site_heads(site)
            if site == "z":
                handles.append(module.register_forward_pre_hook(_pre_hook(fn, n_heads, parts.head_dim)))
            else:
                handles.append(module.register_forward_hook(_post_hook(fn, n_heads, parts.head_dim)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _apply(fn: Edit, x: torch.Tensor, n_heads: int, head_dim: int) -> torch.Tensor | None:
    view = x.view(*x.shape[:-1], n_heads, head_dim)
    out = fn(view)
    return None if out is None else out.reshape(x.shape)


def _pre_hook(fn: Edit, n_heads: int, head_dim: int) -> Callable[..., Any]:
    def hook(_module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        out = _apply(fn, args[0], n_heads, head_dim)
        return None if out is None else (out, *args[1:])

    return hook


def _post_hook(fn: Edit, n_heads: int, head_dim: int) -> Callable[..., Any]:
    def hook(_module: Any, _args: Any, output: torch.Tensor) -> torch.Tensor | None:
        return _apply(fn, output, n_heads, head_dim)

    return hook


# ----------------------------------------------------------------------------------- edit builders


def capture(store: dict[Any, torch.Tensor], key: Any, positions: torch.Tensor | None = None) -> Edit:
    """Read the site into ``store[key]``: the whole ``[B, T, heads, d]`` view, or ``[B, P, heads, d]``
    at ``positions`` (``[B]`` or ``[B, P]`` token indices)."""

    def fn(view: torch.Tensor) -> None:
        store[key] = (view if positions is None else gather_positions(view, positions)).detach().clone()

    return fn


def gather_positions(view: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``view[b, positions[b]]`` for every example: ``[B, P, heads, d]`` (``P = 1`` for ``[B]`` positions)."""
    pos = positions.view(positions.shape[0], -1).to(view.device)
    index = pos[:, :, None, None].expand(-1, -1, *view.shape[2:])
    return view.gather(1, index)


def patch(positions: torch.Tensor, heads: torch.Tensor, values: torch.Tensor) -> Edit:
    """Overwrite ``view[b, positions[b], heads[j]] = values[b, j]`` for every example ``b``.

    ``positions``: ``[B]``; ``heads``: ``[n]`` head indices; ``values``: ``[B, n, d]``.
    """

    def fn(view: torch.Tensor) -> torch.Tensor:
        out = view.clone()
        rows = torch.arange(view.shape[0], device=view.device)[:, None]
        out[rows, positions.to(view.device)[:, None], heads.to(view.device)[None, :]] = values.to(view)
        return out

    return fn


def mix(positions: torch.Tensor, heads: torch.Tensor, values: torch.Tensor, keep: torch.Tensor) -> Edit:
    """Interpolate ``view[b, positions[b], heads[j]]`` towards ``values[b, j]``:
    ``keep[j] * view + (1 - keep[j]) * values`` (``keep = 1`` leaves the head as it is, ``0`` patches it).

    Differentiable in ``keep`` (DCM's mask) and ``values``; ``positions``: ``[B]``; ``values``: ``[B, n, d]``.
    """

    def fn(view: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(view.shape[0], device=view.device)[:, None]
        pos = positions.to(view.device)[:, None]
        idx = heads.to(view.device)[None, :]
        w = keep.to(view)[None, :, None]
        out = view.clone()
        out[rows, pos, idx] = w * view[rows, pos, idx] + (1 - w) * values.to(view)
        return out

    return fn


def replace_where(mask: torch.Tensor, source: torch.Tensor) -> Edit:
    """``where(mask, source, view)``: ``mask`` broadcasts to ``[B, T, heads]``, ``source`` to the view."""

    def fn(view: torch.Tensor) -> torch.Tensor:
        t = view.shape[1]
        m = mask[..., :t, :].to(view.device)
        return torch.where(m[..., None], source[..., :t, :, :].to(view), view)

    return fn


def chain(*fns: Edit) -> Edit:
    """Apply edits in order on one site."""

    def fn(view: torch.Tensor) -> torch.Tensor | None:
        changed = False
        for f in fns:
            out = f(view)
            if out is not None:
                view, changed = out, True
        return view if changed else None

    return fn
