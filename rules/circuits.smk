# Circuit discovery and evaluation: path patching -> candidates -> minimality ->
# faithfulness of every circuit on every model, completeness of each model's own circuit, overlap.

rule path_patching:
    """The four path-patching stages on the discovery split: per-head scores (safetensors) and a summary."""
    input:
        data=result("data", split="discovery"),
        card=result("model_card"),
        model=lambda wc: model_inputs(config, wc.model),
    output:
        scores=result("path_patching"),
        summary=result("path_patching_summary"),
    params:
        config=lambda wc: pick(
            config,
            "dataset.seed",
            *circuit_keys(wc.model, "path_patching", *SELECTION),  # its summary records every setting
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("path_patching", "model")
    log:
        f"{LOGS}/circuits/{{model}}/path_patching.log",
    script:
        "../scripts/path_patching.py"


rule mean_reference:
    """Mean head outputs over the ablation split with random query letters (the mean-ablation reference)."""
    input:
        data=result("data", split="ablation"),
        card=result("model_card"),
        model=lambda wc: model_inputs(config, wc.model),
    output:
        result("means"),
    params:
        config=lambda wc: pick(config, "circuit.mean_seed", "circuit.evaluation.batch_size", models=[wc.model]),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("mean_reference", "model")
    log:
        f"{LOGS}/means/{{model}}.log",
    script:
        "../scripts/mean_reference.py"


rule minimality:
    """Candidate heads selected beyond noise from the per-example path-patching scores, pruned by minimality
    (with a paired test per head): the model's circuit, with each group's stage status."""
    input:
        scores=rules.path_patching.output.scores,
        summary=rules.path_patching.output.summary,
        data=lambda wc: result("data", split=circuit_settings_of(wc.model)["minimality"]["split"]),
        means=rules.mean_reference.output[0],
        model=lambda wc: model_inputs(config, wc.model),
    output:
        circuit=result("circuit", circuit="{model}"),
        report=result("minimality"),
    params:
        config=lambda wc: pick(
            config,
            "dataset.seed",
            "circuit.evaluation.batch_size",
            "circuit.evaluation.keep_runs",
            *circuit_keys(
                wc.model,
                "path_patching.metric",
                "candidates",
                "minimality",  # the circuit file records every setting
                *SELECTION,
            ),
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("minimality", "model")
    log:
        f"{LOGS}/circuits/{{model}}/minimality.log",
    script:
        "../scripts/minimality.py"


rule bootstrap:
    """Selection frequencies: the discovery prompts resampled, the noise-guarded selection rerun on the stored
    per-example scores (no model needed); per head and group, and each stage's share of resamples with signal."""
    input:
        scores=rules.path_patching.output.scores,
        summary=rules.path_patching.output.summary,
        circuit=rules.minimality.output.circuit,
    output:
        csv=result("bootstrap_csv"),
        json=result("bootstrap_json"),
    params:
        config=lambda wc: pick(config, *circuit_keys(wc.model, "path_patching.metric", "candidates", "selection")),
    benchmark:
        bench("bootstrap", "model")
    log:
        f"{LOGS}/circuits/{{model}}/bootstrap.log",
    script:
        "../scripts/bootstrap.py"


rule external_circuit:
    """A circuit given as a JSON file (ours or the original repository's format), checked and copied."""
    input:
        lambda wc: repo_path(EXTERNAL[wc.ext]["path"]),
    output:
        result("circuit", circuit="{ext}"),
    wildcard_constraints:
        ext="|".join(re.escape(e) for e in EXTERNAL) or "^$",
    threads: config["threads"]
    benchmark:
        bench("external_circuit", "ext")
    log:
        f"{LOGS}/circuits/{{ext}}/external.log",
    script:
        "../scripts/external_circuit.py"


rule faithfulness:
    """One circuit on one model: circuit accuracy, faithfulness, random-circuit baseline."""
    input:
        circuit=result("circuit"),
        data=result("data", split=config["circuit"]["evaluation"]["split"]),
        means=result("means"),
        model=lambda wc: model_inputs(config, wc.model),
    output:
        result("faithfulness"),
    wildcard_constraints:
        circuit="|".join(re.escape(c) for c in CIRCUITS),
    params:
        config=lambda wc: pick(
            config,
            *(f"circuit.evaluation.{k}" for k in ("batch_size", "keep_runs", "seed", "random_draws")),
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("faithfulness", "circuit", "model")
    log:
        f"{LOGS}/faithfulness/{{circuit}}/{{model}}.log",
    script:
        "../scripts/faithfulness.py"


rule completeness:
    """A model's own circuit: random subsets K and whole groups, |F(C minus K) - F(M minus K)|."""
    input:
        circuit=rules.minimality.output.circuit,
        data=result("data", split=config["circuit"]["evaluation"]["split"]),
        means=rules.mean_reference.output[0],
        model=lambda wc: model_inputs(config, wc.model),
    output:
        result("completeness"),
    params:
        config=lambda wc: pick(
            config,
            *(f"circuit.evaluation.{k}" for k in ("batch_size", "keep_runs", "seed", "completeness_draws")),
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("completeness", "model")
    log:
        f"{LOGS}/completeness/{{model}}.log",
    script:
        "../scripts/completeness.py"


rule circuit_tables:
    """Faithfulness (every circuit x model), completeness and circuit overlap tables."""
    input:
        faithfulness=[result("faithfulness", circuit=c, model=m) for c, m in PAIRS],
        completeness=expand(result("completeness"), model=MODELS),
        circuits=expand(result("circuit"), circuit=CIRCUITS),
        bootstrap=expand(result("bootstrap_json"), model=MODELS),
    output:
        faithfulness=result("faithfulness_table"),
        completeness=result("completeness_table"),
        overlap=result("overlap_csv"),
        overlap_json=result("overlap_json"),
    params:
        circuits=CIRCUITS,
        models=MODELS,
    benchmark:
        bench("circuit_tables")
    log:
        f"{LOGS}/circuit_tables.log",
    script:
        "../scripts/circuit_tables.py"
