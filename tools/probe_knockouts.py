"""Where a base organism's answer travels: attention knockouts on held-out box probes (not the study's splits).

    python tools/probe_knockouts.py --model models/organisms/base

Prints the probe accuracy with each knockout of entity_tracking.probes.PROBE_KNOCKOUTS applied from start layer s
to the top, for every s (docs/organisms.md).
"""

import argparse
import json

import torch

from entity_tracking.probes import box_probes, probe_knockouts

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--model", default="models/organisms/base")
ap.add_argument("--probes", type=int, default=420)
ap.add_argument("--seed", type=int, default=777, help="of the probes")
args = ap.parse_args()
torch.set_num_threads(1)
result = probe_knockouts(args.model, box_probes(args.seed, args.probes))
rounded = {k: [round(x, 3) for x in v] if isinstance(v, list) else round(v, 3) for k, v in result.items()}
print(json.dumps(rounded, indent=1))
