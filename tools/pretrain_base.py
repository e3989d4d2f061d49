"""Pre-train a base organism from a recipe outside the DAG (how models/organisms/base was made, and how
the recipes in models/organisms/tried are rerun).

    python tools/pretrain_base.py models/organisms/base/recipe.json /tmp/base && cp /tmp/base/* models/organisms/base/

The DAG does the same with --config retrain_base=true (rule train_base).
"""

import argparse

from entity_tracking.io import read_json
from entity_tracking.organisms import pretrain_base
from entity_tracking.runtime import configure

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Pre-train a base organism from a recipe (outside the DAG).")
    parser.add_argument("recipe", help="the recipe JSON file")
    parser.add_argument("out_dir", help="where the checkpoint, its train_log.csv and pretrain.log go")
    args = parser.parse_args()
    recipe = read_json(args.recipe)
    log = configure(1, recipe["seed"], f"{args.out_dir}/pretrain.log")
    log.info("weights sha256 %s", pretrain_base(recipe, args.out_dir))
