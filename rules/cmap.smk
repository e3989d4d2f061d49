# Cross-model activation patching per (source, target) pair, and attention knockout per model, with
# their tables.

rule cmap:
    """A source model's head activations patched into a target model: every group and the full circuit
    (head outputs), and q/k/v input variants of the configured groups."""
    input:
        data=result("data", split=config["cmap"]["split"]),
        cards=lambda wc: [result("model_card", model=m) for m in CMAP_PAIRS[wc.pair]],
        model=lambda wc: list(dict.fromkeys(p for m in CMAP_PAIRS[wc.pair] for p in model_inputs(config, m))),
        circuit=lambda wc: cmap_head_set_files(wc.pair)[0],
        dcm=lambda wc: list(cmap_head_set_files(wc.pair)[1].values()),
    output:
        result("cmap"),
    wildcard_constraints:
        pair="|".join(re.escape(p) for p in CMAP_PAIRS) or "^$",
    params:
        source=lambda wc: CMAP_PAIRS[wc.pair][0],
        target=lambda wc: CMAP_PAIRS[wc.pair][1],
        dcm=lambda wc: cmap_head_set_files(wc.pair)[1],
        config=lambda wc: pick(
            config,
            "dataset.seed",
            "evaluation.confidence",
            *(f"cmap.{k}" for k in ("batch_size", "circuit_of", "heads", "input_groups", "input_variants")),
            "cmap.input_mode",
            models=CMAP_PAIRS[wc.pair],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("cmap", "pair")
    log:
        f"{LOGS}/cmap/{{pair}}.log",
    script:
        "../scripts/cmap.py"


rule knockout:
    """Attention knockout curves of one model: five conditions, every start layer."""
    input:
        data=result("data", split=config["knockout"]["split"]),
        card=result("model_card"),
        model=lambda wc: model_inputs(config, wc.model),
    output:
        result("knockout"),
    params:
        config=lambda wc: pick(
            config,
            "evaluation.confidence",
            *(f"knockout.{k}" for k in ("batch_size", "seed", "conditions")),
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("knockout", "model")
    log:
        f"{LOGS}/knockout/{{model}}.log",
    script:
        "../scripts/knockout.py"


rule cmap_tables:
    """CMAP (pair x kind x group x variant) and knockout (model x condition x start layer) tables."""
    input:
        cmap=[result("cmap", pair=p) for p in CMAP_PAIRS],
        knockout=expand(result("knockout"), model=KNOCKOUT_MODELS),
    output:
        cmap=result("cmap_table"),
        knockout=result("knockout_table"),
    benchmark:
        bench("cmap_tables")
    log:
        f"{LOGS}/cmap_tables.log",
    script:
        "../scripts/cmap_tables.py"
