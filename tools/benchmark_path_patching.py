"""Benchmark: path patching by the reference method (two full forwards per sender) against the fast method.

Both methods run all four stages end to end (``path_patching``, receivers chained from stage to stage,
without the noise guard so that every stage runs) on the same model and the same discovery records; the
script prints wall-clock times, the speed-up and the largest absolute difference between the two methods'
scores (every stage, both metrics). It shares its data, loading and timing with ``tools/benchmark.py``
(``entity_tracking.benchmark``), which times every method (path patching's reference on one stage only).

    .venv/bin/python tools/benchmark_path_patching.py [--records 301] [--repeat 1] [--models organism-base toy-8x16]

Models: the shipped ``organism-base`` (4 layers x 8 heads) and a random toy Llama of 8 layers x 16 heads
(hidden 256, one kv head per query head), so that the growth of the speed-up with the number of heads
shows. The toy's random weights are scaled up so that its scores are not all ~0 (which would make the
difference column meaningless); timings do not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import os
import sys
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from entity_tracking.benchmark import REPO, SEED, task_records, timed
from entity_tracking.dataset import load_objects
from entity_tracking.interventions import ModelParts
from entity_tracking.model_specs import model_source
from entity_tracking.models import load_source
from entity_tracking.path_patching import STAGES, path_patching, prepare_data
from entity_tracking.selection import NO_GUARD

MODELS: dict[str, dict[str, Any]] = {
    "organism-base": {"topk": {"value_fetcher": 4, "pos_transmitter": 3, "pos_detector": 4, "struct_reader": 2}},
    "toy-8x16": {"topk": {"value_fetcher": 8, "pos_transmitter": 4, "pos_detector": 6, "struct_reader": 4}},
}


def load(name: str) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, vocabulary)`` of a benchmark model."""
    if name == "organism-base":
        from entity_tracking.config import build_config

        lm, vocab = load_source(model_source(build_config({}), name, REPO))
        return lm.model.float().eval(), lm.tokenizer, vocab
    if name == "toy-8x16":
        from entity_tracking.tokenization import check_vocabulary
        from entity_tracking.toy import build_model, build_tokenizer

        tok = build_tokenizer("metaspace")
        model = build_model(tok, "llama", layers=8, hidden=256, heads=16, kv_heads=16, intermediate=512, seed=0)
        with torch.no_grad():
            for pname, p in model.named_parameters():
                if "norm" not in pname:
                    p.mul_(4.0)
        return model, tok, check_vocabulary(tok, load_objects())
    raise SystemExit(f"unknown model {name!r}; choose from {sorted(MODELS)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=301, help="discovery records (at most 301)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the best time is reported")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    records = task_records(SEED, 7, "discovery", args.records)

    rows = []
    for name in args.models:
        model, tok, vocab = load(name)
        parts = ModelParts.of(model)
        data = prepare_data(tok, records, vocab)
        topk = MODELS[name]["topk"]
        results = {}
        times = {}
        for method in ("reference", "fast"):
            print(f"{name}: {method} ...", file=sys.stderr, flush=True)
            run = partial(
                path_patching, parts, data, topk, method=method, batch_size=args.batch_size, selection=NO_GUARD
            )
            times[method], results[method] = timed(run, args.repeat)
        ref, fast = results["reference"], results["fast"]
        mean = {k: {s: {m: r[s]["examples"][m].double().mean(0) for m in ("prob", "logit")} for s in STAGES}
                for k, r in results.items()}  # fmt: skip
        ref_m, fast_m = mean["reference"], mean["fast"]
        diff = max(float((ref_m[s][m] - fast_m[s][m]).abs().max()) for s in STAGES for m in ("prob", "logit"))
        scale = max(float(ref_m[s][m].abs().max()) for s in STAGES for m in ("prob", "logit"))
        same = all(ref[s]["top"] == fast[s]["top"] for s in STAGES)
        rows.append(
            [
                name,
                f"{parts.num_layers} x {parts.heads}",
                str(len(data)),
                f"{times['reference']:.2f}",
                f"{times['fast']:.2f}",
                f"{times['reference'] / times['fast']:.1f}x",
                f"{diff:.1e}",
                f"{scale:.2g}",
                "yes" if same else "NO",
            ]
        )
    header = [
        "model",
        "layers x heads",
        "records",
        "reference s",
        "fast s",
        "speed-up",
        "max abs diff",
        "max abs score",
        "same top heads",
    ]
    print(f"| {' | '.join(header)} |")
    print(f"|{'|'.join('---' for _ in header)}|")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    print(
        f"\nCPU, torch {torch.__version__}, {torch.get_num_threads()} thread, float32, batch size {args.batch_size}, "
        f"best of {args.repeat}; all four stages, both metrics (prob and logit) compared."
    )
    return 0 if all(row[-1] == "yes" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
