rule evaluate:
    """Task accuracy of one model: greedy argmax over the whole vocabulary at the last token."""
    input:
        data=f"{RESULTS}/data/{config['evaluation']['split']}.jsonl",
        card=f"{RESULTS}/models/{{model}}.json",
        model=lambda wc: model_inputs(config, wc.model),
    output:
        json=f"{RESULTS}/eval/{{model}}.json",
        csv=f"{RESULTS}/eval/{{model}}_predictions.csv",
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
        expand(f"{RESULTS}/eval/{{model}}.json", model=MODELS),
    output:
        f"{RESULTS}/accuracy.csv",
    benchmark:
        bench("accuracy_table")
    log:
        f"{LOGS}/accuracy_table.log",
    script:
        "../scripts/accuracy_table.py"
