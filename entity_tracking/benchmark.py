"""Benchmarks: wall time, forward passes per second and peak memory of each method on one model.

Each method is timed through the package's own functions, on data generated from an explicit seed and a
seeded pseudo-circuit (random heads with the study's path-patching top-k group sizes). What is timed
excludes loading the model and the untimed set-up each method names (``scope``). Work is counted by hooks:

* ``full_forwards``: prompt rows that entered the model at its embedding layer (each the start of a complete
  forward of one prompt);
* ``forward_equivalents``: token positions processed by every decoder layer's MLP, summed, divided by
  ``layers x prompt length``, i.e. the number of full forwards that would do the same per-token layer work.
  Suffix runs (from a layer, from a position) count fractionally; fast path patching's single-position MLP
  pushes count too. Backward passes (DCM) and the LM head are not counted.

``python -m entity_tracking.benchmark TASK_JSON`` runs one task and prints its result as JSON (used by
``tools/benchmark.py`` to run each method in a fresh process, so that its memory peak is its own).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from entity_tracking.io import atomic_write

REPO = Path(__file__).resolve().parent.parent
SEED = 20240101
METHODS: tuple[str, ...] = (
    "path_patching_fast",
    "path_patching_fast_stage",
    "path_patching_reference_stage",
    "dcm",
    "cmap_output",
    "knockout",
    "evaluation",
)
STAGE = "pos_transmitter"  # the single stage timed for both methods: its receivers are the value fetchers


@dataclass
class Task:
    """One method on one model. ``model`` is ``[STUDY:]NAME``; ``configfile`` replaces the study."""

    model: str
    method: str
    study: str = "default"
    configfile: str | None = None
    device: str = "cpu"
    records: int = 70
    seed: int = SEED
    threads: int = 1
    reference_senders: int = 12
    dcm_steps: int = 0  # 0: one epoch of the study's dcm_train split
    root: str = str(REPO)  # where the DAG's checkpoints are (results/<study>/checkpoints/...)


@dataclass
class Row:
    model: str
    method: str
    status: str = "ok"
    scope: str = ""
    wall_s: float | None = None
    full_forwards: int | None = None
    forward_equivalents: float | None = None
    forwards_per_s: float | None = None
    peak_rss_mb: float | None = None
    delta_anon_mb: float | None = None
    gpu_peak_mb: float | None = None
    gpu_delta_mb: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- models, data


def task_config(task: Task) -> tuple[dict[str, Any], str]:
    """The validated config of the task's model and the model's name in it."""
    import yaml

    from entity_tracking.config import build_config

    study, _, name = task.model.rpartition(":")
    if task.configfile and not study:
        overrides = yaml.safe_load(Path(task.configfile).read_text(encoding="utf-8"))
    else:
        overrides = {"study": study or task.study}
    return build_config({**overrides, "device": task.device}, REPO / "config"), name


def task_records(seed: int, num_boxes: int, split: str, n: int) -> list[dict[str, Any]]:
    """The first ``n`` records of ``split`` generated from ``seed`` (whole contexts of ``num_boxes`` records)."""
    from entity_tracking.dataset import generate, load_objects

    contexts = max(2, math.ceil(n / num_boxes))  # the discovery split draws partners from another context
    return generate(seed, num_boxes, {split: contexts}, load_objects())[split][:n]


def pseudo_circuit(layers: int, heads: int, sizes: dict[str, int], seed: int) -> dict[str, list[tuple[int, int]]]:
    """Distinct random heads per group (seeded), ``sizes[group]`` each (at most every head)."""
    from entity_tracking.circuits import GROUPS

    rng = random.Random(seed)
    every = [(layer, head) for layer in range(layers) for head in range(heads)]
    return {g: sorted(rng.sample(every, min(sizes[g], len(every)))) for g in GROUPS}


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall-clock time over ``repeat`` runs, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


# ------------------------------------------------------------------------------- counting, memory


class WorkCounter:
    """Counts prompt rows entering the embedding and token positions through every decoder layer's MLP."""

    def __init__(self, parts: Any):
        self.parts, self.rows, self.token_layers, self.handles = parts, 0, 0, []

    def __enter__(self) -> WorkCounter:
        def embed(_m: Any, args: tuple[Any, ...], _out: Any) -> None:
            self.rows += args[0].shape[0]

        def mlp(_m: Any, args: tuple[Any, ...], _out: Any) -> None:
            self.token_layers += args[0].numel() // args[0].shape[-1]

        self.handles.append(self.parts.model.get_input_embeddings().register_forward_hook(embed))
        self.handles += [layer.mlp.register_forward_hook(mlp) for layer in self.parts.layers]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()


class PeakMemory:
    """Peak resident memory of this process while inside (sampled every ``interval`` s by a thread) and the
    increase of its anonymous part (resident minus file-backed and shared pages: memory-mapped weights paged
    in do not count), and the CUDA allocator's peak and its increase when ``device`` is a GPU."""

    def __init__(self, device: torch.device, interval: float = 0.005):
        import psutil

        self.proc, self.device, self.interval = psutil.Process(), device, interval
        self.stop = threading.Event()
        self.peak_rss = self.start_anon = self.peak_anon = 0
        self.start_gpu = self.peak_gpu = 0

    def _read(self) -> None:
        info = self.proc.memory_info()
        self.peak_rss = max(self.peak_rss, info.rss)
        self.peak_anon = max(self.peak_anon, info.rss - info.shared)

    def _sample(self) -> None:
        while not self.stop.is_set():
            self._read()
            self.stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start_gpu = torch.cuda.memory_allocated(self.device)
        info = self.proc.memory_info()
        self.peak_rss, self.start_anon = info.rss, info.rss - info.shared
        self.peak_anon = self.start_anon
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_gpu = torch.cuda.max_memory_allocated(self.device)
        self.stop.set()
        self.thread.join()
        self._read()


def _sync(device: torch.device) -> None:
    """Wait for the GPU's queued work, so that the time measured includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Stop(Exception):
    """Raised by :class:`SenderBudget` to end the reference method after its budget of senders."""


class SenderBudget:
    """Stops the reference path-patching stage after ``senders`` sender heads (``calls`` model calls each,
    after ``setup`` calls: the counterfactual and the clean forward) and records when senders began."""

    def __init__(self, parts: Any, senders: int, calls: int, setup: int = 2):
        self.parts, self.limit, self.setup = parts, setup + senders * calls, setup
        self.calls, self.first_sender = 0, None

    def __enter__(self) -> SenderBudget:
        def hook(_m: Any, _args: Any) -> None:
            if self.calls == self.setup:
                self.first_sender = time.perf_counter()
            if self.calls >= self.limit:
                raise _Stop
            self.calls += 1

        self.handle = self.parts.model.register_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.handle.remove()
        return exc[0] is _Stop


# --------------------------------------------------------------------------------------- methods


Prepared = tuple[Callable[[], Any], str, dict[str, Any]]


def _path_patching(task: Task, cfg: dict[str, Any], name: str, parts: Any, loaded: Any, vocab: Any) -> Prepared:
    from entity_tracking.circuits import top_heads
    from entity_tracking.config import circuit_settings
    from entity_tracking.path_patching import path_patching, prepare_data, stage_scores
    from entity_tracking.selection import NO_GUARD

    settings = circuit_settings(cfg, name)["path_patching"]
    records = task_records(task.seed, cfg["dataset"]["num_boxes"], "discovery", task.records)
    data = prepare_data(loaded.tokenizer, records, vocab)
    n, topk, rows = len(data), settings["topk"], settings["max_rows"]
    if task.method == "path_patching_fast":
        # no noise guard: every stage runs whatever the model (a random one has no signal), as in the original
        args = (topk, settings["metric"], "fast", settings["batch_size"], rows, settings["share_clean_runs"], NO_GUARD)
        scope = f"all 4 stages, {n} records, batch {settings['batch_size']}, top-k {list(topk.values())}"
        return lambda: path_patching(parts, data, *args), scope, {}
    first = stage_scores(parts, data, "value_fetcher", [], "fast", n, rows)  # the stage's receivers (not timed)
    receivers = top_heads(first[settings["metric"]].mean(0), topk["value_fetcher"])
    if task.method == "path_patching_fast_stage":
        scope = f"{STAGE} stage only ({len(receivers)} receivers), {n} records in one batch, clean runs included"
        return lambda: stage_scores(parts, data, STAGE, receivers, "fast", n, rows), scope, {}
    total = parts.num_layers * parts.heads
    senders = total if task.reference_senders <= 0 else min(task.reference_senders, total)
    budget = SenderBudget(parts, senders, calls=2)
    extra: dict[str, Any] = {"senders": senders, "of_senders": total}

    def run() -> None:
        start = time.perf_counter()
        with budget:
            stage_scores(parts, data, STAGE, receivers, "reference", n, rows)
        if senders < total and budget.first_sender is not None:
            per_sender = (time.perf_counter() - budget.first_sender) / senders
            extra["whole_stage_s"] = budget.first_sender - start + per_sender * total

    scope = f"{STAGE} stage, {n} records in one batch, 2 full forwards per sender: "
    scope += "every sender head" if senders == total else f"the first {senders} of {total} sender heads"
    return run, scope, extra


def _dcm(task: Task, cfg: dict[str, Any], name: str, parts: Any, loaded: Any, vocab: Any) -> Prepared:
    from entity_tracking.circuits import POSITION_OF
    from entity_tracking.dataset import generate, load_objects
    from entity_tracking.dcm import BaseRuns, Split, encode_pairs, train_mask
    from entity_tracking.desiderata import build_examples
    from entity_tracking.tokenization import encode_records

    settings = {**cfg["dcm"], "epochs": 1}
    bs, boxes = settings["batch_size"], cfg["dataset"]["num_boxes"]
    steps = task.dcm_steps or math.ceil(cfg["dataset"]["splits"]["dcm_train"] * boxes / bs)
    sizes = {"dcm_train": math.ceil(steps * bs / boxes), "dcm_val": math.ceil(bs / boxes)}
    records = generate(task.seed, boxes, sizes, load_objects())
    group = "pos_transmitter"
    heads = pseudo_circuit(parts.num_layers, parts.heads, cfg["circuit"]["path_patching"]["topk"], task.seed)[group]
    position = POSITION_OF[group]
    splits = {}
    for split, n in (("dcm_train", steps * bs), ("dcm_val", bs)):
        recs = records[split][:n]
        base = encode_records(loaded.tokenizer, recs, vocab)
        examples = build_examples("positional", recs, settings["seed"], split)
        pairs = encode_pairs(loaded.tokenizer, examples, recs, base, vocab)
        runs = BaseRuns(parts, base, settings["eval_batch_size"], settings["cache_clean_runs"])
        splits[split] = Split(pairs, runs, runs.sources(pairs, [position])[position])
    scope = (
        f"1 epoch = {steps} steps x {bs} pairs (positional), {len(heads)} heads at {position}, "
        f"validation every {settings['validate_every']} steps over {bs} pairs; base clean runs before (not timed)"
    )
    return lambda: train_mask(parts, heads, position, splits["dcm_train"], splits["dcm_val"], settings), scope, {}


def _cmap(task: Task, cfg: dict[str, Any], name: str, parts: Any, loaded: Any, vocab: Any) -> Prepared:
    from entity_tracking.cmap import OUTPUT_ORDER, capture_source, cmap_logits, needed_slots, output_patches
    from entity_tracking.partial_forward import clean_run, equal_length_batches
    from entity_tracking.tokenization import encode_records

    records = task_records(task.seed, cfg["dataset"]["num_boxes"], "eval", task.records)
    enc = encode_records(loaded.tokenizer, records, vocab)
    heads = pseudo_circuit(parts.num_layers, parts.heads, cfg["circuit"]["path_patching"]["topk"], task.seed)
    plans = {g: output_patches(heads if g == "full_circuit" else {g: heads[g]}) for g in OUTPUT_ORDER}
    slots = needed_slots(plans)
    batches = equal_length_batches(enc.attention_mask, cfg["cmap"]["batch_size"])
    device = loaded.device

    def run() -> None:
        with torch.no_grad():
            for rows in batches:
                batch = enc.select(rows)
                source, _ = capture_source(parts, batch, slots)
                clean = clean_run(parts, batch.input_ids.to(device))
                for patches in plans.values():
                    cmap_logits(parts, batch, clean, patches, source, slots)

    scope = (
        f"output patching, {len(plans)} head sets (4 groups, full circuit), {len(enc)} records, batch "
        f"{cfg['cmap']['batch_size']}; the model patched into itself (one model loaded)"
    )
    return run, scope, {}


def _knockout(task: Task, cfg: dict[str, Any], name: str, parts: Any, loaded: Any, vocab: Any) -> Prepared:
    from entity_tracking.knockout import condition_positions, knockout_curves
    from entity_tracking.tokenization import encode_records

    settings = cfg["knockout"]
    records = task_records(task.seed, cfg["dataset"]["num_boxes"], settings["split"], task.records)
    enc = encode_records(loaded.tokenizer, records, vocab)
    positions = {c: condition_positions(enc, c, settings["seed"]) for c in settings["conditions"]}
    scope = f"{len(positions)} conditions x {parts.num_layers} start layers, {len(enc)} records"
    return lambda: knockout_curves(parts, enc, positions, settings["batch_size"]), scope, {}


def _evaluation(task: Task, cfg: dict[str, Any], name: str, parts: Any, loaded: Any, vocab: Any) -> Prepared:
    from entity_tracking.evaluation import evaluate
    from entity_tracking.tokenization import encode_records

    settings = cfg["evaluation"]
    records = task_records(task.seed, cfg["dataset"]["num_boxes"], settings["split"], task.records)
    enc = encode_records(loaded.tokenizer, records, vocab)
    scope = f"{len(enc)} records, batch {settings['batch_size']}"
    return lambda: evaluate(loaded, enc, settings["batch_size"]), scope, {}


PREPARE: dict[str, Callable[..., Prepared]] = {
    "path_patching_fast": _path_patching,
    "path_patching_fast_stage": _path_patching,
    "path_patching_reference_stage": _path_patching,
    "dcm": _dcm,
    "cmap_output": _cmap,
    "knockout": _knockout,
    "evaluation": _evaluation,
}


def run_task(task: Task) -> Row:
    """Load the model, prepare the method (not timed), then time it, counting its work and memory."""
    from entity_tracking.errors import ModelUnavailableError
    from entity_tracking.interventions import ModelParts
    from entity_tracking.model_specs import model_source
    from entity_tracking.models import load_source
    from entity_tracking.runtime import set_seed
    from entity_tracking.tokenization import encode_records

    if task.method not in PREPARE:
        raise ValueError(f"unknown method {task.method!r}; use one of {METHODS}")
    torch.set_num_threads(task.threads)
    row = Row(task.model, task.method)
    try:
        cfg, name = task_config(task)
        loaded, vocab = load_source(model_source(cfg, name, task.root))
    except (ModelUnavailableError, KeyError, OSError) as err:
        row.status = f"unavailable: {str(err).split(' Fix:')[0]}"
        return row
    parts = ModelParts.of(loaded.model)
    sample = encode_records(loaded.tokenizer, task_records(task.seed, cfg["dataset"]["num_boxes"], "eval", 7), vocab)
    length = float(sample.attention_mask.sum(1).float().mean())
    with torch.no_grad():  # warm-up (not timed): weights paged in, first-call set-up done
        loaded.model(input_ids=sample.input_ids[:1].to(loaded.device))
    try:
        set_seed(task.seed)
        fn, row.scope, row.extra = PREPARE[task.method](task, cfg, name, parts, loaded, vocab)
        set_seed(task.seed)
        with WorkCounter(parts) as work, PeakMemory(loaded.device) as mem:
            row.wall_s, _ = timed(lambda: (fn(), _sync(loaded.device)))
    except Exception as err:  # one method failing leaves the others' rows
        row.status = f"failed: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        return row
    row.full_forwards = work.rows
    row.forward_equivalents = work.token_layers / (parts.num_layers * length)
    row.forwards_per_s = row.forward_equivalents / row.wall_s
    row.peak_rss_mb, row.delta_anon_mb = mem.peak_rss / 2**20, (mem.peak_anon - mem.start_anon) / 2**20
    if loaded.device.type == "cuda":
        row.gpu_peak_mb, row.gpu_delta_mb = mem.peak_gpu / 2**20, (mem.peak_gpu - mem.start_gpu) / 2**20
    return row


def run_isolated(task: Task, timeout: float | None = None) -> Row:
    """:func:`run_task` in a fresh Python process (its memory peak is its own); a crash becomes the row's status."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)}
    env.update({"TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE"})
    cmd = [sys.executable, "-m", "entity_tracking.benchmark", json.dumps(asdict(task))]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines:
        tail = (res.stderr.strip().splitlines() or ["no output"])[-1]
        return Row(task.model, task.method, status=f"failed (exit {res.returncode}): {tail}")
    return Row(**json.loads(lines[-1]))


# ----------------------------------------------------------------------------------------- tables

COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "{}"),
    ("method", "method", "{}"),
    ("wall_s", "wall s", "{:.2f}"),
    ("full_forwards", "full fwd", "{}"),
    ("forward_equivalents", "fwd-equiv", "{:.1f}"),
    ("forwards_per_s", "fwd-equiv/s", "{:.1f}"),
    ("peak_rss_mb", "peak RSS MB", "{:.0f}"),
    ("delta_anon_mb", "Δ anon MB", "{:.0f}"),
    ("gpu_peak_mb", "GPU peak MB", "{:.0f}"),
    ("gpu_delta_mb", "GPU Δ MB", "{:.0f}"),
    ("scope", "what was timed", "{}"),
)

FOOTNOTE = """\
* wall s: one run of what the row names, after loading the model and the untimed set-up the row names.
* full fwd: prompt rows that entered the model at its embedding layer (each starts one complete forward).
* fwd-equiv: token positions processed by every decoder layer's MLP, summed, divided by layers x prompt
  length: the number of full forwards of one prompt doing the same per-token layer work. Suffix runs (from a
  layer, from a position) count as the fraction they run; fast path patching's one-position MLP pushes count;
  backward passes (DCM) and the LM head do not. fwd-equiv/s = fwd-equiv / wall s.
* peak RSS MB: the process's peak resident memory while the method ran (sampled every 5 ms; Python, torch,
  model and data included). Δ anon MB: the increase of its anonymous resident memory (RSS minus file-backed
  and shared pages, so memory-mapped weights do not count) from the method's start to its peak: what the
  method itself allocated. Each row runs in a fresh process after one untimed warm-up forward, unless
  --in-process. GPU columns: torch.cuda.max_memory_allocated during the method, and its increase.
* path patching reference: the {stage} stage only; when it stops after some sender heads its wall time is
  theirs and the whole stage's time is extrapolated linearly in the note.
* Heads of CMAP and DCM: a seeded random pseudo-circuit with the study's path-patching top-k group sizes."""


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    value = row.get(key)
    return "" if value is None else fmt.format(value)


def table_columns(rows: Sequence[Row]) -> list[tuple[str, str, str]]:
    """The columns to show: the GPU ones only when some row has them."""
    gpu = any(r.gpu_peak_mb is not None for r in rows)
    return [c for c in COLUMNS if gpu or not c[0].startswith("gpu_")]


def _scope(row: Row) -> str:
    if row.status != "ok":
        return row.status
    whole = row.extra.get("whole_stage_s")
    return row.scope + (f"; whole stage ~{whole:.0f} s (extrapolated)" if whole is not None else "")


def markdown_table(rows: Sequence[Row]) -> str:
    cols = table_columns(rows)
    lines = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in rows:
        values = {**asdict(row), "scope": _scope(row)}
        lines.append("| " + " | ".join(_cell(values, key, fmt) for key, _, fmt in cols) + " |")
    return "\n".join(lines)


def write_tables(rows: Sequence[Row], prefix: str | Path, header: dict[str, Any]) -> list[Path]:
    """``PREFIX.md`` (the printed table and its notes), ``PREFIX.csv`` and ``PREFIX.json``."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    md, csv_path, js = (prefix.with_name(prefix.name + ext) for ext in (".md", ".csv", ".json"))
    with atomic_write(md) as fh:
        fh.write(markdown_table(rows) + "\n\n" + FOOTNOTE.format(stage=STAGE) + "\n")
    keys = [f for f in Row.__dataclass_fields__ if f != "extra"] + ["whole_stage_s"]
    with atomic_write(csv_path) as fh:
        writer = csv.DictWriter(fh, keys, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**asdict(row), "whole_stage_s": row.extra.get("whole_stage_s")})
    with atomic_write(js) as fh:
        json.dump({**header, "rows": [asdict(r) for r in rows]}, fh, indent=1)
        fh.write("\n")
    return [md, csv_path, js]


@contextmanager
def _quiet_stdout() -> Iterator[None]:
    """Keep stdout for the result line: anything else printed goes to stderr."""
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved


if __name__ == "__main__":
    with _quiet_stdout():
        result = run_task(Task(**json.loads(sys.argv[1])))
    print(json.dumps(asdict(result)))
