# DCM and activation patching: which heads of each group carry position, object value
# or box-label value, learned on each circuit's own model, then patched into every model.

rule desiderata:
    """Base/source pairs and labels of every desideratum on the DCM splits (seeded), with a manifest."""
    input:
        expand(result("data"), split=DCM_SPLITS),
    output:
        manifest=result("desiderata_manifest"),
        files=expand(result("desiderata", desideratum="{d}"), d=DESIDERATA, split=DCM_SPLITS),
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
        circuit=result("circuit"),
        data=expand(result("data"), split=DCM_SPLITS),
        desiderata=rules.desiderata.output.files,
        model=lambda wc: model_inputs(config, DCM_CIRCUITS[wc.circuit]),
    output:
        [result("dcm", group=g, desideratum=d) for g, d in DCM_JOBS],
    wildcard_constraints:
        circuit="|".join(re.escape(c) for c in DCM_CIRCUITS),
    params:
        model=lambda wc: DCM_CIRCUITS[wc.circuit],
        desiderata_dir=result("desiderata_dir"),  # <desideratum>/<split>.jsonl: the inputs above
        dcm_dir=result("dcm_dir"),  # <circuit>/<group>/<desideratum>.json: the outputs above
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
        data=result("data", split=AP_SPLIT),
        dcm=lambda wc: [
            result("dcm", circuit=c, group=g, desideratum=d) for c in ap_circuits(wc.model) for g, d in DCM_JOBS
        ],
        model=lambda wc: model_inputs(config, wc.model),
    output:
        result("activation_patching"),
    params:
        circuits=lambda wc: ap_circuits(wc.model),
        dcm_dir=result("dcm_dir"),  # <circuit>/<group>/<desideratum>.json: the dcm inputs above
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
        dcm=[result("dcm", circuit=c, group=g, desideratum=d) for c in DCM_CIRCUITS for g, d in DCM_JOBS],
        activation_patching=expand(result("activation_patching"), model=MODELS),
    output:
        dcm=result("dcm_table"),
        activation_patching=result("activation_patching_table"),
    threads: config["threads"]
    benchmark:
        bench("dcm_tables")
    log:
        f"{LOGS}/dcm_tables.log",
    script:
        "../scripts/dcm_tables.py"
