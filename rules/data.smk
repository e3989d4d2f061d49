rule dataset:
    """The 7-box entity-tracking data: every split, seeded, with stored counterfactual partners."""
    input:
        objects=[repo_path(config["dataset"]["objects_file"])] if config["dataset"]["objects_file"] else [],
    output:
        splits=expand(result("data"), split=SPLITS),
        manifest=result("data_manifest"),
    params:
        config=pick(config, "dataset"),
    threads: config["threads"]
    benchmark:
        bench("dataset")
    log:
        f"{LOGS}/dataset.log",
    script:
        "../scripts/make_dataset.py"
