"""Measure DCM's speed and peak memory on one model of a study (one group, one desideratum).

    python tools/measure_dcm_memory.py --config config/studies/qwen.yaml --model qwen2.5-coder-0.5b \\
        --heads 12.3 14.7 17.0 19.11 --records 70

Prints seconds per training step, per validation pass and per source forward, and the process's
peak resident memory (and the GPU's peak allocation when the model is on a GPU). Used to document
what DCM costs beyond the organisms (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch

from entity_tracking.config import build_config
from entity_tracking.dataset import generate, load_objects
from entity_tracking.dcm import BaseRuns, Split, accuracy_with, encode_pairs, train_mask
from entity_tracking.desiderata import build_examples
from entity_tracking.interventions import ModelParts
from entity_tracking.model_specs import model_source
from entity_tracking.models import load_source
from entity_tracking.tokenization import encode_records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=None, help="a study file (default: the default study)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--heads", nargs="+", required=True, help="layer.head of the group, e.g. 12.3")
    ap.add_argument("--position", default="last", choices=["last", "query_label", "prev_query_label"])
    ap.add_argument("--records", type=int, default=70, help="base records per split (multiple of 7)")
    ap.add_argument("--keep-clean-runs", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    overrides = {}
    if args.config:
        import yaml

        overrides = yaml.safe_load(Path(args.config).read_text())
    cfg = build_config(overrides)
    settings = cfg["dcm"]
    t0 = time.perf_counter()
    loaded, vocab = load_source(model_source(cfg, args.model))
    parts = ModelParts.of(loaded.model)
    print(f"load: {time.perf_counter() - t0:.1f} s; {parts.num_layers} layers x {parts.heads} heads")
    heads = [tuple(int(x) for x in h.split(".")) for h in args.heads]
    n = args.records // 7
    records = generate(cfg["dataset"]["seed"], 7, {"dcm_train": n, "dcm_val": n, "dcm_test": 0}, load_objects())
    splits = {}
    for name in ("dcm_train", "dcm_val"):
        recs = records[name]
        base = encode_records(loaded.tokenizer, recs, vocab)
        pairs = encode_pairs(loaded.tokenizer, build_examples("positional", recs, 1, name), recs, base, vocab)
        t0 = time.perf_counter()
        runs = BaseRuns(parts, base, settings["eval_batch_size"], args.keep_clean_runs)
        src = runs.sources(pairs, [args.position])[args.position]
        print(f"{name}: clean runs and sources of {len(recs)} records: {time.perf_counter() - t0:.1f} s")
        splits[name] = Split(pairs, runs, src)
    t0 = time.perf_counter()
    out = train_mask(parts, heads, args.position, splits["dcm_train"], splits["dcm_val"], settings)
    steps = settings["epochs"] * -(-len(splits["dcm_train"].pairs) // settings["batch_size"])
    print(f"training: {steps} steps, {(time.perf_counter() - t0) / steps:.2f} s per step (validations included)")
    t0 = time.perf_counter()
    val = splits["dcm_val"]
    accuracy_with(parts, val.runs, val.pairs, heads, torch.zeros(len(heads)), args.position, val.src)
    print(f"one validation pass over {len(val.pairs)} records: {time.perf_counter() - t0:.1f} s")
    print(f"best validation accuracy {out['best']['accuracy']:.3f} with {out['best']['selected']} heads")
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    if torch.cuda.is_available():
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
