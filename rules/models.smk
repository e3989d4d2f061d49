rule model_card:
    """Load a model (download, convert or build it), check its tokenizer, record its architecture."""
    input:
        example=f"{RESULTS}/data/{config['evaluation']['split']}.jsonl",
        checkpoints=lambda wc: trained_inputs(config, wc.model),
    output:
        f"{RESULTS}/models/{{model}}.json",
    params:
        spec=lambda wc: config["models"][wc.model],
    resources:
        gpu=GPU,
    log:
        f"{LOGS}/models/{{model}}.log",
    script:
        "../scripts/model_card.py"
