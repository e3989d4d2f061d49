# Figures (issue 8): one rule per figure, generated from FIGURES. Each entry names a plot function
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


def paper_accuracy():
    from entity_tracking import paper

    return paper.ACCURACY if PROFILE == paper.PROFILE else None


FIGURES = [
    {
        "name": "accuracy",
        "input": lambda wc: {"accuracy": f"{RESULTS}/accuracy.csv"},
        "params": lambda wc: {"chance": 1 / config["dataset"]["num_boxes"], "paper": paper_accuracy()},
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
        },
        "params": lambda wc: {"label": LABELS[wc.model]},
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
