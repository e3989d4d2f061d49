"""Pre-train the shipped base organism outside the DAG (how models/organisms/base was made).

    python scripts/pretrain_base.py models/organisms/base/recipe.json /tmp/base && cp /tmp/base/* models/organisms/base/

The DAG does the same with --config retrain_base=true (rule train_base).
"""

import sys

from entity_tracking.io import read_json
from entity_tracking.organisms import pretrain_base
from entity_tracking.runtime import configure

if __name__ == "__main__":
    recipe_file, out_dir = sys.argv[1], sys.argv[2]
    recipe = read_json(recipe_file)
    log = configure(1, recipe["seed"], f"{out_dir}/pretrain.log")
    log.info("weights sha256 %s", pretrain_base(recipe, out_dir))
