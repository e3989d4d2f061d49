# Workflow-level lists and helpers, shared by the rule files (which define only rules). Planning
# imports torch-free modules only (config, job_config, model_specs, layout; tests/test_workflow.py).

from entity_tracking.config import (
    circuit_settings,
    cmap_pairs,
    finetuned_pairs,
    knockout_models,
    model_label,
    repo_path,
)
from entity_tracking.job_config import RUNTIME_KEYS, pick
from entity_tracking import layout
from entity_tracking.layout import DCM_SPLITS, dcm_circuits, dcm_desiderata, dcm_plan, head_set_files, pair_name
from entity_tracking.model_specs import finetune_base_dir, loader_keys, model_inputs, spec_keys


# ---- the study, its results and logs, and the GPU resource

STUDY = config["study"]
MODELS = list(config["models"])
RESULTS = layout.results_dir(STUDY)
LOGS = layout.logs_dir(STUDY)
BENCH = f"{LOGS}/benchmarks"  # timings vary from run to run: kept out of results/ and so out of the manifest


def result(name, **fields):
    """A file of the study's results, by its name in ``entity_tracking.layout.FILES``; a field not given stays
    ``{field}``, a wildcard."""
    return layout.result(RESULTS, name, **fields)


def bench(rule_name, *wildcards):
    """The benchmark file of a job: ``logs/<study>/benchmarks/<rule>.tsv``, or ``<rule>/{w1}/{w2}.tsv``."""
    if not wildcards:
        return f"{BENCH}/{rule_name}.tsv"
    return f"{BENCH}/{rule_name}/" + "/".join(f"{{{w}}}" for w in wildcards) + ".tsv"


def uses_gpu() -> int:
    """The `gpu` resource of the jobs that load a model: 1 when they run on a GPU, else 0. A Snakemake profile
    caps it (profiles/default, profiles/gpu-local: one model on the GPU at a time); the SLURM executor turns it
    into `--gpus=1`. `device: cuda` asks for a GPU even where the DAG is planned without one (a cluster's login
    node); `auto` asks when the planning machine has one."""
    if config["device"] in ("cpu", "cuda"):
        return int(config["device"] == "cuda")
    import torch

    return int(torch.cuda.is_available())


GPU = uses_gpu()


# ---- circuits: every circuit and the (circuit, model) pairs it is evaluated on

EXTERNAL = config["circuit"]["external"]
CIRCUITS = MODELS + list(EXTERNAL)
PAIRS = [(c, m) for c in CIRCUITS for m in (EXTERNAL[c].get("models", MODELS) if c in EXTERNAL else MODELS)]


def circuit_settings_of(model):
    return circuit_settings(config, model)


def circuit_keys(model, *keys):
    """The dotted keys of a model's circuit settings: ``circuit.<key>``, and its own override
    ``models.<model>.circuit.<key>`` when it has one (``entity_tracking.config.circuit_settings``)."""
    return [k for key in keys for k in (f"circuit.{key}", f"models.{model}.circuit.{key}?")]


SELECTION = [f"selection.{k}" for k in ("alpha", "correction", "min_effect")]  # the noise guard


# ---- DCM and activation patching

DCM_JOBS = dcm_plan(config)
DESIDERATA = dcm_desiderata(config)
DCM_CIRCUITS = dcm_circuits(config)  # circuit -> the model it was found in
AP_SPLIT = config["activation_patching"]["split"]


def ap_circuits(model):
    """The circuits (with DCM results) evaluated on ``model``."""
    return [c for c in DCM_CIRCUITS if (c, model) in PAIRS]


# ---- CMAP pairs and knockout models

CMAP_PAIRS = {pair_name(s, t): (s, t) for s, t in cmap_pairs(config)}
KNOCKOUT_MODELS = knockout_models(config)


def cmap_head_set_files(pair):
    source, target = CMAP_PAIRS[pair]
    return head_set_files(config, source, target, RESULTS)


# ---- figures

FIGURES_DIR = layout.figures_dir(STUDY)
FINETUNED = [m for m, _ in finetuned_pairs(config)]


def base_of(model):
    return config["models"][model]["base_model"]


def label_keys(*models):
    """The config keys of the models' labels (a model without one is labelled by its name)."""
    return [f"models.{m}.label?" for m in models if m in config["models"]]


def labels(cfg, models):
    return {m: model_label(cfg, m) for m in models}


def circuit_files(model, prefix):
    """A model's path-patching scores, candidates and circuit, as named inputs ``<prefix>_...``."""
    return {
        f"{prefix}_scores": result("path_patching", model=model),
        f"{prefix}_minimality": result("minimality", model=model),
        f"{prefix}_circuit": result("circuit", circuit=model),
    }


def paper_values(name, key=None):
    """The paper's numbers drawn on a figure of the paper study (None elsewhere, or for other keys)."""
    from entity_tracking import paper

    if STUDY != paper.STUDY:
        return None
    if name == "dcm":  # the paper's DCM ran on its own Llama circuit, which is our published-llama
        found_in = DCM_CIRCUITS.get(key)
        return {gd: acc for gd, (_, acc) in paper.DCM_LLAMA.items()} if found_in == paper.LLAMA else None
    if name == "knockout":
        return paper.KNOCKOUT_CURVES if key == paper.LLAMA else None
    return {"accuracy": paper.ACCURACY, "cmap": paper.CMAP}[name]


AP_CIRCUITS = [c for c in DCM_CIRCUITS if any(c in ap_circuits(m) for m in MODELS)]


# ---- the claims report: every file a claim reads (a later stage adds its outputs to CLAIM_INPUTS and
# its claims to entity_tracking.claims), and what it reads from the config

CLAIM_INPUTS = {
    "accuracy": expand(result("eval"), model=MODELS),
    "cards": expand(result("model_card"), model=MODELS),
    "scores": expand(result("path_patching"), model=MODELS),
    "circuits": expand(result("circuit"), circuit=CIRCUITS),
    "faithfulness": [result("faithfulness", circuit=c, model=m) for c, m in PAIRS],
    "completeness": expand(result("completeness"), model=MODELS),
    "overlap": result("overlap_json"),
    "dcm": [result("dcm", circuit=c, group=g, desideratum=d) for c in DCM_CIRCUITS for g, d in DCM_JOBS],
    "activation_patching": expand(result("activation_patching"), model=MODELS),
    "cmap": [result("cmap", pair=p) for p in CMAP_PAIRS],
    "knockout": expand(result("knockout"), model=KNOCKOUT_MODELS),
}

# What the claims read from the config: the study, the chance level, the models' names and pairings,
# and which circuits, CMAP pairs and knockout models there are.
CLAIM_KEYS = [
    "study",
    "dataset.num_boxes",
    "circuit.external",
    "cmap.pairs",
    "knockout.models",
    *(f"models.{m}.{k}" for m in MODELS for k in ("label?", "role", "base_model?")),
]
