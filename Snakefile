"""Entity-tracking study (Prakash et al., ICLR 2024): from the dataset to the figures.

    snakemake --cores all                                          # CPU default study
    snakemake --cores all --config study=paper                     # the paper's 7B models (GPU)
    snakemake --report results/<study>/report.html                 # figures, claims, run times, benchmarks
    snakemake --cores 1 verify                                     # the results equal the manifests

Rules live in rules/*.smk (the lists and helpers they share in rules/common.smk); each calls a thin
script in scripts/, which calls the package entity_tracking. Outputs go to results/<study>/ and
figures/<study>/, logs to logs/<study>/.
"""

import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

BASEDIR = Path(workflow.basedir)
os.environ.setdefault("PYTHONHASHSEED", "0")  # jobs iterate sets of strings in the same order on every run

# The package is installed (README: pip install -e .). Snakemake also puts this directory on the import path,
# of planning and of every script job (there after the installed packages: each job checks that it runs this
# checkout's code, entity_tracking.provenance.check_code).
from entity_tracking.config import ConfigError, build_config  # noqa: E402
from entity_tracking.dataset import SPLITS  # noqa: E402

try:
    _resolved = build_config(dict(config), BASEDIR / "config")
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_resolved)


# The study's lists and helpers (STUDY, MODELS, RESULTS, bench, ...); the other rule files define rules only.
include: "rules/common.smk"


wildcard_constraints:
    model="|".join(re.escape(m) for m in MODELS),
    split="|".join(SPLITS),


include: "rules/data.smk"
include: "rules/organisms.smk"
include: "rules/models.smk"
include: "rules/evaluation.smk"
include: "rules/circuits.smk"
include: "rules/dcm.smk"
include: "rules/cmap.smk"
include: "rules/figures.smk"
include: "rules/report.smk"


report: "report/workflow.rst"


# The study's results; the manifest (rules/provenance.smk) hashes every job that made them.
FINAL_TARGETS = [
    result("data_manifest"),
    *expand(result("model_card"), model=MODELS),
    result("accuracy_table"),
    *expand(result("circuit", circuit="{model}"), model=MODELS),
    *expand(result("bootstrap_csv"), model=MODELS),
    result("faithfulness_table"),
    result("completeness_table"),
    result("overlap_csv"),
    result("dcm_table"),
    result("activation_patching_table"),
    result("cmap_table"),
    result("knockout_table"),
    *FIGURE_FILES,
    *rules.claims.output,
]


include: "rules/provenance.smk"


onstart:
    # Before any job runs or any output is removed: every generated file the run's jobs will read must be
    # what the job that made it recorded (entity_tracking.integrity); each job checks again when it starts.
    from entity_tracking.integrity import IntegrityError, check_run

    try:
        check_run(workflow.dag, RESULTS)
    except IntegrityError as err:
        raise WorkflowError(str(err)) from None


rule all:
    default_target: True
    input:
        FINAL_TARGETS,
        rules.manifest.output,
        rules.benchmark_summary.output,
