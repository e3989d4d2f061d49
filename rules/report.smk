# The claims report: the paper's headline numbers (paper profile) and its qualitative
# claims (every profile) beside our results, with verdicts. Every file a claim reads is an input
# here; a later stage adds its outputs to CLAIM_INPUTS and its claims to entity_tracking.claims.

CLAIM_INPUTS = {
    "accuracy": expand(f"{RESULTS}/eval/{{model}}.json", model=MODELS),
    "cards": expand(f"{RESULTS}/models/{{model}}.json", model=MODELS),
    "scores": expand(f"{RESULTS}/circuits/{{model}}/path_patching.safetensors", model=MODELS),
    "circuits": expand(f"{RESULTS}/circuits/{{circuit}}/circuit.json", circuit=CIRCUITS),
    "faithfulness": [f"{RESULTS}/faithfulness/{c}/{m}.json" for c, m in PAIRS],
    "completeness": expand(f"{RESULTS}/completeness/{{model}}.json", model=MODELS),
    "overlap": f"{RESULTS}/circuit_overlap.json",
    "dcm": [f"{RESULTS}/dcm/{c}/{g}/{d}.json" for c in DCM_CIRCUITS for g, d in DCM_JOBS],
    "activation_patching": expand(f"{RESULTS}/activation_patching/{{model}}.json", model=MODELS),
    "cmap": [f"{RESULTS}/cmap/{p}.json" for p in CMAP_PAIRS],
    "knockout": expand(f"{RESULTS}/knockout/{{model}}.json", model=KNOCKOUT_MODELS),
}

# What the claims read from the config: the profile, the chance level, the models' names and pairings,
# and which circuits, CMAP pairs and knockout models there are.
CLAIM_KEYS = [
    "profile",
    "dataset.num_boxes",
    "circuit.external",
    "cmap.pairs",
    "knockout.models",
    *(f"models.{m}.{k}" for m in MODELS for k in ("label?", "role", "base_model?")),
]


rule claims:
    """The claims report as markdown, JSON and HTML (the HTML goes into the Snakemake report)."""
    input:
        **CLAIM_INPUTS,
    output:
        md=f"{RESULTS}/claims.md",
        json=f"{RESULTS}/claims.json",
        html=report(f"{RESULTS}/claims.html", caption="../report/captions/claims.rst", category="Claims"),
    params:
        root=RESULTS,
        config=pick(config, *CLAIM_KEYS),
    benchmark:
        bench("claims")
    log:
        f"{LOGS}/claims.log",
    script:
        "../scripts/claims.py"


rule benchmark_summary:
    """Wall time and peak memory per rule from every job's benchmark file (logs/<profile>/benchmarks/), as CSV
    and as a page of the Snakemake report. Runs after the manifest, the last job of a run."""
    input:
        f"{RESULTS}/manifest.json",
    output:
        csv=f"{LOGS}/benchmarks.csv",
        html=report(f"{LOGS}/benchmarks.html", caption="../report/captions/benchmarks.rst", category="Benchmarks"),
    params:
        root=BENCH,
        config=pick(config, "profile"),
    benchmark:
        bench("benchmark_summary")
    log:
        f"{LOGS}/benchmark_summary.log",
    script:
        "../scripts/benchmark_summary.py"
