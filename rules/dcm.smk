# DCM and activation patching: which heads of each group carry position, object value
# or box-label value, learned on each circuit's own model, then patched into every model.

rule desiderata:
    """Base/source pairs and labels of every desideratum on the DCM splits (seeded), with a manifest."""
    input:
        expand(f"{RESULTS}/data/{{split}}.jsonl", split=DCM_SPLITS),
    output:
        manifest=f"{RESULTS}/desiderata/manifest.json",
        files=expand(f"{RESULTS}/desiderata/{{d}}/{{split}}.jsonl", d=DESIDERATA, split=DCM_SPLITS),
    params:
        config=pick(config, "dcm.seed", "dcm.desiderata", "dcm.additional_groups", "dcm.additional_desiderata"),
    threads: config["threads"]
    benchmark:
        bench("desiderata")
    log:
        f"{LOGS}/desiderata.log",
    script:
        "../scripts/desiderata.py"


rule dcm:
    """Every (group, desideratum) mask of one circuit, learned on the model it was found in."""
    input:
        circuit=f"{RESULTS}/circuits/{{circuit}}/circuit.json",
        data=expand(f"{RESULTS}/data/{{split}}.jsonl", split=DCM_SPLITS),
        desiderata=rules.desiderata.output.files,
        model=lambda wc: model_inputs(config, DCM_CIRCUITS[wc.circuit]),
    output:
        [f"{RESULTS}/dcm/{{circuit}}/{g}/{d}.json" for g, d in DCM_JOBS],
    wildcard_constraints:
        circuit="|".join(re.escape(c) for c in DCM_CIRCUITS),
    params:
        model=lambda wc: DCM_CIRCUITS[wc.circuit],
        desiderata_dir=f"{RESULTS}/desiderata",  # <desideratum>/<split>.jsonl: the inputs above
        dcm_dir=f"{RESULTS}/dcm",  # <circuit>/<group>/<desideratum>.json: the outputs above
        config=lambda wc: pick(config, "dcm", models=[DCM_CIRCUITS[wc.circuit]]),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("dcm", "circuit")
    log:
        f"{LOGS}/dcm/{{circuit}}.log",
    script:
        "../scripts/dcm.py"


rule activation_patching:
    """Every circuit's DCM heads patched fully from the source into one model, over seeded repeats."""
    input:
        data=f"{RESULTS}/data/{AP_SPLIT}.jsonl",
        dcm=lambda wc: [f"{RESULTS}/dcm/{c}/{g}/{d}.json" for c in ap_circuits(wc.model) for g, d in DCM_JOBS],
        model=lambda wc: model_inputs(config, wc.model),
    output:
        f"{RESULTS}/activation_patching/{{model}}.json",
    params:
        circuits=lambda wc: ap_circuits(wc.model),
        dcm_dir=f"{RESULTS}/dcm",  # <circuit>/<group>/<desideratum>.json: the dcm inputs above
        config=lambda wc: pick(
            config,
            *(f"activation_patching.{k}" for k in ("seed", "batch_size", "repeats")),
            *(f"dcm.{k}" for k in ("cache_clean_runs", "desiderata", "additional_groups", "additional_desiderata")),
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("activation_patching", "model")
    log:
        f"{LOGS}/activation_patching/{{model}}.log",
    script:
        "../scripts/activation_patching.py"


rule dcm_tables:
    """DCM results (every circuit x group x desideratum) and activation patching (every circuit x model)."""
    input:
        dcm=[f"{RESULTS}/dcm/{c}/{g}/{d}.json" for c in DCM_CIRCUITS for g, d in DCM_JOBS],
        activation_patching=expand(f"{RESULTS}/activation_patching/{{model}}.json", model=MODELS),
    output:
        dcm=f"{RESULTS}/dcm.csv",
        activation_patching=f"{RESULTS}/activation_patching.csv",
    threads: config["threads"]
    benchmark:
        bench("dcm_tables")
    log:
        f"{LOGS}/dcm_tables.log",
    script:
        "../scripts/dcm_tables.py"
