# Figures: one rule per figure, generated from FIGURES. Each entry names a plot function
# of entity_tracking.figures.PLOTS, its inputs (result files only) and keyword arguments; its
# caption is report/captions/<name>.rst. A figure per model gives `wildcards` and a {model} file.
# To add a figure: a plot function, one entry here, one caption file.

FIGURES_DIR = f"figures/{PROFILE}"
LABELS = {m: spec.get("label", m) for m, spec in config["models"].items()}
FINETUNED = [m for m, spec in config["models"].items() if spec["role"] == "finetuned" and spec.get("base_model")]


def base_of(model):
    return config["models"][model]["base_model"]


def circuit_files(model, prefix):
    """A model's path-patching scores, candidates and circuit, as named inputs ``<prefix>_...``."""
    where = f"{RESULTS}/circuits/{model}"
    return {
        f"{prefix}_scores": f"{where}/path_patching.safetensors",
        f"{prefix}_minimality": f"{where}/minimality.json",
        f"{prefix}_circuit": f"{where}/circuit.json",
    }


def paper_values(name, key=None):
    """The paper's numbers drawn on a figure of the paper profile (None elsewhere, or for other keys)."""
    from entity_tracking import paper

    if PROFILE != paper.PROFILE:
        return None
    if name == "dcm":  # the paper's DCM ran on its own Llama circuit, which is our published-llama
        found_in = DCM_CIRCUITS.get(key)
        return {gd: acc for gd, (_, acc) in paper.DCM_LLAMA.items()} if found_in == paper.LLAMA else None
    if name == "knockout":
        return paper.KNOCKOUT_CURVES if key == paper.LLAMA else None
    return {"accuracy": paper.ACCURACY, "cmap": paper.CMAP}[name]


AP_CIRCUITS = [c for c in DCM_CIRCUITS if any(c in ap_circuits(m) for m in MODELS)]


FIGURES = [
    {
        "name": "accuracy",
        "input": lambda wc: {"accuracy": f"{RESULTS}/accuracy.csv"},
        "params": lambda wc: {"chance": 1 / config["dataset"]["num_boxes"], "paper": paper_values("accuracy")},
    },
    {
        "name": "causal_impact",
        "file": "causal_impact_{model}",
        "wildcards": {"model": FINETUNED},
        "input": lambda wc: {**circuit_files(wc.model, "ft"), **circuit_files(base_of(wc.model), "base")},
        "params": lambda wc: {
            "ft_label": LABELS[wc.model],
            "base_label": LABELS[base_of(wc.model)],
            "metric": config["circuit"]["path_patching"]["metric"],
        },
    },
    {
        "name": "completeness",
        "input": lambda wc: {"completeness": [f"{RESULTS}/completeness/{m}.json" for m in MODELS]},
        "params": lambda wc: {"labels": LABELS},
    },
    {
        "name": "faithfulness",
        "input": lambda wc: {"faithfulness": f"{RESULTS}/faithfulness.csv"},
        "params": lambda wc: {"circuits": CIRCUITS, "models": MODELS, "labels": LABELS},
    },
    {
        "name": "circuit_diagram",
        "file": "circuit_{model}",
        "wildcards": {"model": MODELS},
        "input": lambda wc: {
            "circuit": f"{RESULTS}/circuits/{wc.model}/circuit.json",
            "path_patching": f"{RESULTS}/circuits/{wc.model}/path_patching.json",
            "bootstrap": f"{RESULTS}/circuits/{wc.model}/bootstrap.csv",
        },
        "params": lambda wc: {"label": LABELS[wc.model]},
    },
    {
        "name": "dcm",
        "file": "dcm_{circuit}",
        "wildcards": {"circuit": list(DCM_CIRCUITS)},
        "input": lambda wc: {"dcm": f"{RESULTS}/dcm.csv"},
        "params": lambda wc: {
            "circuit": wc.circuit,
            "label": LABELS.get(wc.circuit, wc.circuit),
            "paper": paper_values("dcm", wc.circuit),
        },
    },
    {
        "name": "activation_patching",
        "file": "activation_patching_{circuit}",
        "wildcards": {"circuit": AP_CIRCUITS},
        "input": lambda wc: {"activation_patching": f"{RESULTS}/activation_patching.csv"},
        "params": lambda wc: {"circuit": wc.circuit, "models": MODELS, "labels": LABELS},
    },
    *(
        [
            {
                "name": "cmap",
                "input": lambda wc: {"cmap": f"{RESULTS}/cmap.csv"},
                "params": lambda wc: {"labels": LABELS, "paper": paper_values("cmap")},
            }
        ]
        if CMAP_PAIRS
        else []
    ),
    {
        "name": "knockout",
        "file": "knockout_{model}",
        "wildcards": {"model": KNOCKOUT_MODELS},
        "input": lambda wc: {"knockout": f"{RESULTS}/knockout/{wc.model}.json"},
        "params": lambda wc: {"label": LABELS[wc.model], "paper": paper_values("knockout", wc.model)},
    },
]


for fig in FIGURES:

    rule:
        """One figure of FIGURES, as PDF and PNG (the PNG goes into the report), from result files only."""
        name:
            f"figure_{fig['name']}"
        input:
            unpack(fig["input"]),
        output:
            pdf=f"{FIGURES_DIR}/{fig.get('file', fig['name'])}.pdf",
            png=report(
                f"{FIGURES_DIR}/{fig.get('file', fig['name'])}.png",
                caption=f"../report/captions/{fig['name']}.rst",
                category="Figures",
            ),
        wildcard_constraints:
            **{k: "|".join(re.escape(v) for v in values) or "^$" for k, values in fig.get("wildcards", {}).items()},
        params:
            name=fig["name"],
            kwargs=fig["params"],
        benchmark:
            bench(f"figure_{fig['name']}", *fig.get("wildcards", {}))
        log:
            f"{LOGS}/figures/{fig.get('file', fig['name'])}.log",
        script:
            "../scripts/figure.py"


FIGURE_FILES = [
    f"{FIGURES_DIR}/{stem}.{ext}"
    for fig in FIGURES
    for stem in expand(fig.get("file", fig["name"]), **fig.get("wildcards", {}))
    for ext in ("pdf", "png")
]
