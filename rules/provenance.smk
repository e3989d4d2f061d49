# Reproducibility: every job's script records its outputs, inputs, parameters and code
# version (entity_tracking.provenance); rule manifest merges the records of the jobs behind
# FINAL_TARGETS into results/<study>/manifest.json and writes the run's provenance.json;
# rule verify (not part of `all`) checks the files against it and against the expected manifest
# results/expected/<study>-manifest.json when one is committed. Before any job of a run starts
# (onstart in the Snakefile), entity_tracking.integrity checks what the run's jobs will read.


rule manifest:
    """The hash manifest of the study (sha256 of every output, each job's inputs and parameters) and the
    run's provenance (packages, Python, torch, CUDA, GPU, image, git commit, lock-file hashes)."""
    input:
        FINAL_TARGETS,
    output:
        manifest=result("manifest"),
        provenance=result("provenance"),
    params:
        targets=FINAL_TARGETS,
        config=pick(config, *(k for k in config if k not in RUNTIME_KEYS)),  # recorded in the manifest
    benchmark:
        bench("manifest")
    log:
        f"{LOGS}/manifest.log",
    script:
        "../scripts/manifest.py"


rule verify:
    """Recompute every hash of the manifest and compare with the expected manifest; fails naming each file
    that differs or is missing (`python -m entity_tracking.verify --help` for tolerances and other manifests).
    It has no output and no benchmark file, so Snakemake runs it every time it is asked for."""
    input:
        rules.manifest.output.manifest,
    run:
        from entity_tracking.verify import main as verify_main

        if verify_main(["--study", STUDY]) != 0:
            raise WorkflowError(f"verify: the results of study {STUDY!r} differ from their manifests (listed above)")
