"""What a base organism answers in each query form of its pre-training documents, on held-out box contexts.

    python tools/probe_forms.py models/organisms/base [--boxes 7] [--probes 200] [--seed 99]

Prints the accuracy of the task's direct answer, the recap, the ordinal fetch, a label's place and the chain of
thought (place, then object), after the plain context and the context with each object's place written before it,
with and without the answers-only mask (docs/organisms.md, places written in the text).
"""

import argparse
import json

import torch

from entity_tracking.organisms import probe_cases
from entity_tracking.probes import form_accuracies

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("model")
ap.add_argument("--boxes", type=int, default=7)
ap.add_argument("--probes", type=int, default=200)
ap.add_argument("--seed", type=int, default=99, help="of the probe contexts")
args = ap.parse_args()
torch.set_num_threads(1)
result = form_accuracies(args.model, probe_cases(args.seed, args.boxes, args.probes))
print(json.dumps({k: round(v, 3) for k, v in result.items()}, indent=1))
