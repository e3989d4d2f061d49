"""Probe box-free fine-tuning recipes on a base organism with held-out box probes (not the study's splits).

    python tools/probe_finetunes.py --corpora paraphrase,code --lrs 2e-4 --out probes.json

Each (corpus, learning rate) is fine-tuned fully from BASE (400 steps of 16, seed 11, as the default
study's fine-tunes) into OUT_DIR, and compared with BASE on the same probes (entity_tracking.probes).
"""

import argparse
import json
from pathlib import Path

import torch

from entity_tracking.corpora import FINETUNING_CORPORA
from entity_tracking.io import write_json
from entity_tracking.organisms import finetune
from entity_tracking.probes import box_probes, compare, probe_outcomes

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--base", default="models/organisms/base")
ap.add_argument("--corpora", default=",".join(FINETUNING_CORPORA), help="comma-separated corpus names")
ap.add_argument("--lrs", default="2e-4", help="comma-separated learning rates")
ap.add_argument("--steps", type=int, default=400)
ap.add_argument("--probes", type=int, default=420)
ap.add_argument("--seed", type=int, default=777, help="of the probes")
ap.add_argument("--out-dir", type=Path, default=Path("cache/probes"))
ap.add_argument("--out", type=Path, default=Path("cache/probes/probes.json"))
args = ap.parse_args()
torch.set_num_threads(1)

probes = box_probes(args.seed, args.probes)
base = probe_outcomes(args.base, probes)
rows = [{"recipe": "base", "accuracy": base.count("1") / len(base)}]
print(f"base: accuracy {rows[0]['accuracy']:.3f} on {len(probes)} held-out probes", flush=True)
for corpus in args.corpora.split(","):
    for lr in (float(x) for x in args.lrs.split(",")):
        settings = {"corpus": corpus, "method": "full", "steps": args.steps, "batch_size": 16, "lr": lr,
                    "seed": 11, "warmup": 20, "lora_rank": 8, "lora_alpha": 16}  # fmt: skip
        out_dir = args.out_dir / f"{corpus}-full-{lr:g}"
        finetune(args.base, settings, out_dir)
        tuned = probe_outcomes(out_dir, probes, tokenizer_dir=args.base)
        row = {"recipe": settings, **compare(base, tuned)}
        rows.append(row)
        print(f"{corpus} full lr {lr:g}: accuracy {row['accuracy']:.3f}, change {row['change']:+.3f} "
              f"(+{row['gained']} -{row['lost']}, p {row['p_value']:.2g})", flush=True)  # fmt: skip
write_json(args.out, {"base": args.base, "probes": len(probes), "probe_seed": args.seed, "rows": rows})
print(json.dumps(str(args.out)))
