# The claims report: the paper's headline numbers (paper study) and its qualitative
# claims (every study) beside our results, with verdicts. Every file a claim reads is an input
# (CLAIM_INPUTS in common.smk).

rule claims:
    """The claims report as markdown, JSON and HTML (the HTML goes into the Snakemake report)."""
    input:
        **CLAIM_INPUTS,
    output:
        md=result("claims_md"),
        json=result("claims_json"),
        html=report(result("claims_html"), caption="../report/captions/claims.rst", category="Claims"),
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
    """Wall time and peak memory per rule from every job's benchmark file (logs/<study>/benchmarks/), as CSV
    and as a page of the Snakemake report. Runs after the manifest, the last job of a run."""
    input:
        result("manifest"),
    output:
        csv=f"{LOGS}/benchmarks.csv",
        html=report(f"{LOGS}/benchmarks.html", caption="../report/captions/benchmarks.rst", category="Benchmarks"),
    params:
        root=BENCH,
        config=pick(config, "study"),
    benchmark:
        bench("benchmark_summary")
    log:
        f"{LOGS}/benchmark_summary.log",
    script:
        "../scripts/benchmark_summary.py"
