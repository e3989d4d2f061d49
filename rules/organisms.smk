# Model organisms (default study): the DAG makes the fine-tunes from the shipped base, and
# retrains the base from its recipe when asked (--config retrain_base=True).


rule train_base:
    """Pre-train a base organism from its recipe (only with retrain_base: true; the shipped one is used otherwise)."""
    input:
        recipe=lambda wc: repo_path(config["models"][wc.model]["recipe"]),
    output:
        directory(result("checkpoint", kind="pretrained")),
    threads: config["threads"]
    benchmark:
        bench("train_base", "model")
    log:
        f"{LOGS}/train_base/{{model}}.log",
    script:
        "../scripts/train_base.py"


rule finetune:
    """Fine-tune a model on a corpus without box statements (full or LoRA), deterministically."""
    input:
        base=lambda wc: finetune_base_dir(config, wc.model),
    output:
        directory(result("checkpoint", kind="finetuned")),
    params:
        config=lambda wc: pick(
            config,
            f"models.{wc.model}.base_model",
            f"models.{wc.model}.finetune",
            *spec_keys(config, config["models"][wc.model]["base_model"]),
        ),
    threads: config["threads"]
    resources:
        mem_mb=lambda wc: config["models"][wc.model].get("train_mem_mb", 1000),
    benchmark:
        bench("finetune", "model")
    log:
        f"{LOGS}/finetune/{{model}}.log",
    script:
        "../scripts/finetune.py"
