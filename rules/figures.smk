# Figures: one rule per figure, generated from FIGURES. Each entry names a plot function
# of entity_tracking.figures.PLOTS, its inputs (result files only), the config keys it draws on
# (`reads`) and its keyword arguments, made from those keys alone (`params(wildcards, cfg)`, cfg
# holding just them); its caption is report/captions/<name>.rst. A figure per model gives
# `wildcards` and a {model} file. To add a figure: a plot function, one entry here, one caption file.
# Their helpers (labels, base_of, paper_values, ...) are in common.smk.

FIGURES = [
    {
        "name": "accuracy",
        "input": lambda wc: {"accuracy": result("accuracy_table")},
        "reads": lambda wc: ["dataset.num_boxes"],
        "params": lambda wc, cfg: {"chance": 1 / cfg["dataset"]["num_boxes"], "paper": paper_values("accuracy")},
    },
    {
        "name": "causal_impact",
        "file": "causal_impact_{model}",
        "wildcards": {"model": FINETUNED},
        "input": lambda wc: {**circuit_files(wc.model, "ft"), **circuit_files(base_of(wc.model), "base")},
        "reads": lambda wc: [
            f"models.{wc.model}.base_model",
            *label_keys(wc.model, base_of(wc.model)),
            "circuit.path_patching.metric",
        ],
        "params": lambda wc, cfg: {
            "ft_label": labels(cfg, [wc.model])[wc.model],
            "base_label": labels(cfg, [base_of(wc.model)])[base_of(wc.model)],
            "metric": cfg["circuit"]["path_patching"]["metric"],
        },
    },
    {
        "name": "completeness",
        "input": lambda wc: {"completeness": [result("completeness", model=m) for m in MODELS]},
        "reads": lambda wc: label_keys(*MODELS),
        "params": lambda wc, cfg: {"labels": labels(cfg, MODELS)},
    },
    {
        "name": "faithfulness",
        "input": lambda wc: {"faithfulness": result("faithfulness_table")},
        "reads": lambda wc: label_keys(*MODELS),
        "params": lambda wc, cfg: {"circuits": CIRCUITS, "models": MODELS, "labels": labels(cfg, MODELS)},
    },
    {
        "name": "circuit_diagram",
        "file": "circuit_{model}",
        "wildcards": {"model": MODELS},
        "input": lambda wc: {
            "circuit": result("circuit", circuit=wc.model),
            "path_patching": result("path_patching_summary", model=wc.model),
            "bootstrap": result("bootstrap_csv", model=wc.model),
        },
        "reads": lambda wc: label_keys(wc.model),
        "params": lambda wc, cfg: {"label": labels(cfg, [wc.model])[wc.model]},
    },
    {
        "name": "dcm",
        "file": "dcm_{circuit}",
        "wildcards": {"circuit": list(DCM_CIRCUITS)},
        "input": lambda wc: {"dcm": result("dcm_table")},
        "reads": lambda wc: label_keys(wc.circuit),
        "params": lambda wc, cfg: {
            "circuit": wc.circuit,
            "label": labels(cfg, [wc.circuit])[wc.circuit],
            "paper": paper_values("dcm", wc.circuit),
        },
    },
    {
        "name": "activation_patching",
        "file": "activation_patching_{circuit}",
        "wildcards": {"circuit": AP_CIRCUITS},
        "input": lambda wc: {"activation_patching": result("activation_patching_table")},
        "reads": lambda wc: label_keys(*MODELS),
        "params": lambda wc, cfg: {"circuit": wc.circuit, "models": MODELS, "labels": labels(cfg, MODELS)},
    },
    *(
        [
            {
                "name": "cmap",
                "input": lambda wc: {"cmap": result("cmap_table")},
                "reads": lambda wc: label_keys(*MODELS),
                "params": lambda wc, cfg: {"labels": labels(cfg, MODELS), "paper": paper_values("cmap")},
            }
        ]
        if CMAP_PAIRS
        else []
    ),
    {
        "name": "knockout",
        "file": "knockout_{model}",
        "wildcards": {"model": KNOCKOUT_MODELS},
        "input": lambda wc: {"knockout": result("knockout", model=wc.model)},
        "reads": lambda wc: label_keys(wc.model),
        "params": lambda wc, cfg: {
            "label": labels(cfg, [wc.model])[wc.model],
            "paper": paper_values("knockout", wc.model),
        },
    },
]


def figure_params(fig):
    """A figure rule's params: the config keys it reads, and its keyword arguments made from them alone."""
    return {
        "config": lambda wc: pick(config, *fig["reads"](wc)),
        "kwargs": lambda wc: fig["params"](wc, pick(config, *fig["reads"](wc))),
    }


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
            **figure_params(fig),
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
