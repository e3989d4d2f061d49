"""Benchmark every method on one or more models: wall time, forward passes per second, peak memory.

    python tools/benchmark.py                                    # the base organism, about a minute on 2 CPUs
    python tools/benchmark.py --models qwen:qwen2.5-coder-0.5b --records 7 --root /path/to/a/checkout/with/results
    python tools/benchmark.py --models organism-base --device cuda --records 301 --out results-bench/gpu

Models are ``[STUDY:]NAME`` of a study in config/studies (default: --study) or of --configfile;
checkpoints the DAG makes (fine-tunes, converted GGUF models) are read from ``ROOT/results/<study>/
checkpoints`` (--root, default this checkout). A model that cannot be loaded gets one row saying so.
Each method runs in a fresh process (its memory peak is its own) unless --in-process. The table, its notes
and the machine are printed; --out PREFIX also writes PREFIX.md, PREFIX.csv and PREFIX.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")  # before tqdm is imported
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch

from entity_tracking.benchmark import (
    FOOTNOTE,
    METHODS,
    REPO,
    SEED,
    STAGE,
    Row,
    Task,
    markdown_table,
    run_isolated,
    run_task,
    write_tables,
)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["organism-base"], help="[STUDY:]NAME ...")
    ap.add_argument("--study", default="default", help="the study of names without STUDY:")
    ap.add_argument("--configfile", default=None, help="a complete study file for names without STUDY:")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--records", type=int, default=70, help="prompts of each method (DCM: see --dcm-steps)")
    ap.add_argument("--dcm-steps", type=int, default=0, help="DCM: one epoch of this many steps of the study's "
                    "batch size (0: the study's dcm_train split)")  # fmt: skip
    ap.add_argument("--reference-senders", type=int, default=12, help="reference path patching: stop after this "
                    "many sender heads and extrapolate (0: every head)")  # fmt: skip
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--root", default=str(REPO), help="the directory whose results/ holds the DAG's checkpoints")
    ap.add_argument("--in-process", action="store_true", help="run every method in this process (memory peaks mix)")
    ap.add_argument("--out", default=None, help="also write PREFIX.md, PREFIX.csv, PREFIX.json")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU is visible")

    started = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    base = Task("", "", args.study, args.configfile, args.device, args.records, args.seed, args.threads,
                args.reference_senders, args.dcm_steps, str(Path(args.root).resolve()))  # fmt: skip
    rows: list[Row] = []
    for model in args.models:
        for method in args.methods:
            print(f"{model}: {method} ...", file=sys.stderr, flush=True)
            task = replace(base, model=model, method=method)
            row = run_task(task) if args.in_process else run_isolated(task)
            if row.status.startswith("unavailable"):
                rows.append(replace(row, method="(every method)"))
                break
            rows.append(row)
    load_after = os.getloadavg()
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else None
    machine = {
        "date": started.isoformat(timespec="seconds"),
        "host": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min": {"start": round(load_before[0], 2), "end": round(load_after[0], 2)},
        "device": args.device,
        "gpu": gpu,
        "torch": torch.__version__,
        "threads": args.threads,
        "isolated": not args.in_process,
        "seed": args.seed,
        "records": args.records,
        "dcm_steps": args.dcm_steps,
        "reference_senders": args.reference_senders,
    }
    print(markdown_table(rows))
    print()
    print(FOOTNOTE.format(stage=STAGE))
    print(
        f"\n{machine['date']}, {machine['cpu_count']} CPUs ({machine['cpu']}), load average "
        f"{load_before[0]:.1f} -> {load_after[0]:.1f}, device {args.device}{f' ({gpu})' if gpu else ''}, "
        f"torch {torch.__version__}, {args.threads} thread(s), float32 unless the study says otherwise, "
        f"seed {args.seed}, {'one process per row' if not args.in_process else 'one process'}."
    )
    if args.out:
        for path in write_tables(rows, args.out, machine):
            print(f"wrote {path}", file=sys.stderr)
    return 0 if all(r.status == "ok" or r.status.startswith("unavailable") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
