"""Reading one study's results for the claims: :class:`Results`, :class:`Claim`, the verdicts, thresholds and
the helpers the headline and qualitative claims share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entity_tracking.circuits import GROUPS, Circuit, group_status, load_circuit
from entity_tracking.config import finetuned_pairs, model_label
from entity_tracking.io import read_json, read_safetensors
from entity_tracking.layout import dcm_circuits, relative
from entity_tracking.stats import OutcomeError, parse_outcomes

PASS, FAIL, NOT_COMPUTED, NOT_APPLICABLE = "pass", "fail", "not computed", "not applicable"
VERDICTS = (PASS, FAIL, NOT_COMPUTED, NOT_APPLICABLE)
FAITHFUL, COMPLETE, SURVIVES, MARGIN, ALPHA = 0.80, 0.15, 0.50, 0.05, 0.05
NO_SIGNAL_STATUSES = ("no signal", "not run")
LORA_NOTE = (
    "The original dropped Goat's LoRA o_proj delta in every hooked forward pass (a bug); ours merges "
    "the adapter first, so Goat's hooked results may differ for that reason."
)
GROUP_NAMES = {
    "value_fetcher": "value fetcher",
    "pos_transmitter": "position transmitter",
    "pos_detector": "position detector",
    "struct_reader": "structure reader",
}
FLOOR_NOTE = (
    "The original's positional pairs let ~1/7 of them ask for the base's own answer, so a no-op scored 9-13 %; "
    "ours are resampled and the chance floor (nothing patched) is measured on the same pairs: the paper's number "
    "includes its higher floor."
)
SR_NOTE = (
    "The original validated the structure reader's masks at the training batch's positions and patched it at "
    "the base's position in activation patching; ours uses each prompt's own positions."
)


@dataclass
class Claim:
    """One row of the report."""

    id: str
    kind: str  # "headline" | "qualitative"
    statement: str
    source: str
    paper: Any = None
    ours: Any = None
    tolerance: str = ""
    verdict: str = NOT_COMPUTED
    note: str = ""


@dataclass(frozen=True)
class Study:
    """What the claims know of a study besides its results: its name, its models in study order with their
    labels and base models, the fine-tuned models with their bases, the boxes of a context (chance is
    1/boxes), the circuits DCM ran on (with the model each was found in), and the configured CMAP pairs and
    knockout models (None: the defaults)."""

    name: str
    labels: dict[str, str]
    bases: dict[str, str | None]
    finetuned: list[tuple[str, str]]
    boxes: int
    dcm_circuits: dict[str, str]
    cmap_pairs: list[tuple[str, str]] | None = None
    knockout_models: list[str] | None = None

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> Study:
        """The study a config describes (the keys the claims rule's params carry)."""
        models = config["models"]
        pairs = (config.get("cmap") or {}).get("pairs")
        return cls(
            name=config["study"],
            labels={m: model_label(config, m) for m in models},
            bases={m: models[m].get("base_model") for m in models},
            finetuned=finetuned_pairs(config),
            boxes=int((config.get("dataset") or {}).get("num_boxes", 7)),
            dcm_circuits=dcm_circuits(config),
            cmap_pairs=[(a, b) for a, b in pairs] if pairs else None,
            knockout_models=list((config.get("knockout") or {}).get("models") or []) or None,
        )


class Missing(Exception):
    """A file a claim needs does not exist (yet)."""


class Results:
    """Read access to one study's results directory, raising :class:`Missing` for absent files."""

    def __init__(self, root: str | Path, study: Study) -> None:
        self.root = Path(root)
        self.study = study
        self.models: list[str] = list(study.labels)
        self.boxes = study.boxes  # boxes per context: chance is 1/boxes

    def path(self, rel: str) -> Path:
        path = self.root / rel
        if not path.is_file():
            raise Missing(f"needs {path.as_posix()}")
        return path

    def json(self, rel: str) -> Any:
        return read_json(self.path(rel))

    def field(self, rel: str, *keys: Any) -> Any:
        """A value inside a JSON file by its key path; :class:`Missing` names the file and the path."""
        value = self.json(rel)
        for key in keys:
            try:
                value = value[key]
            except (KeyError, IndexError, TypeError):
                where = "/".join(map(str, keys))
                raise Missing(f"needs {(self.root / rel).as_posix()} with {where}") from None
        return value

    def label(self, model: str) -> str:
        return self.study.labels.get(model, model)

    def finetuned(self) -> list[tuple[str, str]]:
        """(fine-tuned model, its base model) pairs, in study order."""
        return list(self.study.finetuned)

    def accuracy(self, model: str) -> dict[str, Any]:
        return self.json(relative("eval", model=model))

    def faithfulness(self, circuit: str, model: str) -> dict[str, Any]:
        return self.json(relative("faithfulness", circuit=circuit, model=model))

    def completeness(self, model: str) -> dict[str, Any]:
        return self.json(relative("completeness", model=model))

    def circuit(self, name: str) -> Circuit:
        return load_circuit(self.path(relative("circuit", circuit=name)))

    def status(self, name: str) -> dict[str, dict[str, str]]:
        """Per group of a circuit, the status of its path-patching stage (``given`` for a published circuit)."""
        return group_status(self.path(relative("circuit", circuit=name)))

    def outcomes(self, entry: dict[str, Any], where: str, key: str = "outcomes") -> np.ndarray:
        """The per-record outcomes ``entry[key]`` of an accuracy entry of file ``where``; :class:`Missing` when
        absent (results made before outcomes were recorded)."""
        if not isinstance(entry, dict) or key not in entry:
            where_ = (self.root / where).as_posix()
            raise Missing(f"needs per-record outcomes ({key}) in {where_}: rerun the job that made it")
        try:
            return parse_outcomes(entry[key], where)
        except OutcomeError as err:
            raise Missing(f"needs valid per-record outcomes: {err}") from None

    def path_patching(self, model: str) -> dict[str, Any]:
        return read_safetensors(self.path(relative("path_patching", model=model)))

    def overlap(self, a: str, b: str) -> dict[str, Any]:
        """The overlap row of circuits ``a`` and ``b`` over all groups (precision = |a ∩ b| / |a|)."""
        rows = self.json(relative("overlap_json"))
        return next(r for r in rows if r["circuit_a"] == a and r["circuit_b"] == b and r["group"] == "all")

    def base_of(self, model: str) -> str:
        """A model's base model, or the model itself when it is a base."""
        return self.study.bases.get(model) or model

    def dcm_circuits(self) -> dict[str, str]:
        """The circuits DCM ran on, with the model each was found in."""
        return dict(self.study.dcm_circuits)

    def dcm(self, circuit: str, group: str, desideratum: str) -> dict[str, Any]:
        return self.json(relative("dcm", circuit=circuit, group=group, desideratum=desideratum))

    def cmap_pairs(self) -> list[tuple[str, str]]:
        """The CMAP pairs that patch a fine-tuned model into its base (``cmap.pairs`` or the default)."""
        pairs = self.study.cmap_pairs
        wanted = list(pairs) if pairs else self.finetuned()
        return [p for p in wanted if p in self.finetuned()]

    def knockout_models(self) -> list[str]:
        return list(self.study.knockout_models or self.models)

    def heads_per_model(self, model: str) -> int:
        arch = self.json(relative("model_card", model=model))["architecture"]
        return arch["layers"] * arch["heads"]


def unsupported(r: Results, circuit: str, groups: Iterable[str] = GROUPS, heads: bool = True) -> str | None:
    """Why a claim that needs ``groups`` of ``circuit`` is not applicable, or None: a group whose stage had no
    signal (or was not run after one that had none), or (``heads``: the claim needs the group's heads) a group
    minimality left empty."""
    status = r.status(circuit)
    groups = tuple(groups)
    missing = [g for g in groups if status[g]["status"] in NO_SIGNAL_STATUSES]
    if missing:
        stop = next((g for g in GROUPS if status[g]["status"] == "no signal"), missing[0])
        after = [GROUP_NAMES[g] for g in missing if status[g]["status"] == "not run"]
        tail = f"; the {', '.join(after)} stage{'s' if len(after) > 1 else ''} not run" if after else ""
        return f"Not applicable: no signal in stage {GROUP_NAMES[stop]} of {r.label(circuit)}'s circuit{tail}."
    kept = r.circuit(circuit) if heads else {}
    empty = [GROUP_NAMES[g] for g in groups if heads and not kept[g]]
    if empty:
        return f"Not applicable: minimality left the {', '.join(empty)} of {r.label(circuit)}'s circuit empty."
    return None


def paired_note(test: dict[str, Any], a: str, b: str) -> str:
    """One sentence on a paired test of accuracy ``a`` against ``b``."""
    return (
        f"Paired on {test['records']} prompts: {test['a_only']} right only for {a}, {test['b_only']} only for {b}; "
        f"McNemar exact {test['alternative']} p = {test['p_value']:.2g}."
    )


def _selected(res: dict[str, Any]) -> str:
    return f"{len(res['selected'])}/{len(res['heads'])}"


def _notes(*notes: str | bool) -> str:
    """The notes that apply (``cond and text`` gives False when the condition does not hold)."""
    return " ".join(n for n in notes if isinstance(n, str) and n)
