rule convert_model:
    """Load a GGUF model (sha256-checked; or its hub fallback) once and save it as a plain checkpoint."""
    output:
        directory(result("checkpoint", kind="converted")),
    params:
        config=lambda wc: pick(config, *(f"models.{wc.model}.{k}" for k in loader_keys(config, wc.model))),
    threads: config["threads"]
    benchmark:
        bench("convert_model", "model")
    log:
        f"{LOGS}/convert_model/{{model}}.log",
    script:
        "../scripts/convert_model.py"


rule model_card:
    """Load a model (download, convert or build it), check its tokenizer, record its architecture."""
    input:
        example=result("data", split=config["evaluation"]["split"]),
        model=lambda wc: model_inputs(config, wc.model),
    output:
        result("model_card"),
    params:
        config=lambda wc: pick(
            config,
            "dataset.seed",
            *(f"models.{wc.model}.{k}" for k in ("label?", "role", "base_model?")),
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("model_card", "model")
    log:
        f"{LOGS}/models/{{model}}.log",
    script:
        "../scripts/model_card.py"
