rule evaluate:
    """Task accuracy of one model: greedy argmax over the whole vocabulary at the last token."""
    input:
        data=result("data", split=config["evaluation"]["split"]),
        card=result("model_card"),
        model=lambda wc: model_inputs(config, wc.model),
    output:
        json=result("eval"),
        csv=result("predictions"),
    params:
        config=lambda wc: pick(
            config,
            "dataset.seed",
            "evaluation.batch_size",
            "evaluation.confidence",
            f"models.{wc.model}.label?",
            f"models.{wc.model}.role",
            models=[wc.model],
        ),
    threads: config["threads"]
    resources:
        gpu=GPU,
    benchmark:
        bench("evaluate", "model")
    log:
        f"{LOGS}/eval/{{model}}.log",
    script:
        "../scripts/evaluate.py"


rule accuracy_table:
    """One CSV row per model: accuracy with its confidence interval."""
    input:
        expand(result("eval"), model=MODELS),
    output:
        result("accuracy_table"),
    benchmark:
        bench("accuracy_table")
    log:
        f"{LOGS}/accuracy_table.log",
    script:
        "../scripts/accuracy_table.py"
