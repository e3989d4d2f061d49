"""The summary of the Snakemake jobs' benchmark files (rule ``benchmark_summary``): wall time and peak memory
per rule, as CSV and as an HTML page for the Snakemake report. Torch-free."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path
from typing import Any

from entity_tracking.io import atomic_write

SUMMARY_COLUMNS = ("rule", "jobs", "total_s", "max_s", "max_rss_mb")


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def summarise_benchmarks(root: str | Path) -> list[dict[str, Any]]:
    """One row per rule from Snakemake's benchmark files under ``root`` (``<rule>.tsv`` or
    ``<rule>/<wildcards...>.tsv``, one file per job; repeated measurements of a job are averaged for the
    time, maxed for memory): jobs, total and max wall seconds, max RSS in MB (None when never sampled).
    Rows by total time, longest first, then a row ``all`` over every rule."""
    root = Path(root)
    per_rule: dict[str, list[tuple[float, float | None]]] = {}
    for path in sorted(root.rglob("*.tsv")):
        rel = path.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else path.stem
        with path.open(encoding="utf-8") as fh:
            lines = list(csv.DictReader(fh, delimiter="\t"))
        seconds = [s for s in (_number(r.get("s")) for r in lines) if s is not None]
        if not seconds:
            continue
        rss = [m for m in (_number(r.get("max_rss")) for r in lines) if m is not None]
        per_rule.setdefault(rule, []).append((sum(seconds) / len(seconds), max(rss) if rss else None))
    rows = []
    for rule, jobs in per_rule.items():
        rss = [m for _, m in jobs if m is not None]
        rows.append({"rule": rule, "jobs": len(jobs), "total_s": sum(s for s, _ in jobs),
                     "max_s": max(s for s, _ in jobs), "max_rss_mb": max(rss) if rss else None})  # fmt: skip
    rows.sort(key=lambda r: (-r["total_s"], r["rule"]))
    if rows:
        rss = [r["max_rss_mb"] for r in rows if r["max_rss_mb"] is not None]
        rows.append({"rule": "all", "jobs": sum(r["jobs"] for r in rows), "total_s": sum(r["total_s"] for r in rows),
                     "max_s": max(r["max_s"] for r in rows), "max_rss_mb": max(rss) if rss else None})  # fmt: skip
    return rows


def _fmt(value: Any) -> str:
    if value is None:
        return "NA"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def write_benchmark_summary(root: str | Path, out_csv: str | Path, out_html: str | Path, study: str) -> None:
    """The summary of :func:`summarise_benchmarks` as CSV and as an HTML page for the Snakemake report."""
    rows = summarise_benchmarks(root)
    with atomic_write(out_csv) as fh:
        fh.write(",".join(SUMMARY_COLUMNS) + "\n")
        fh.writelines(",".join(_fmt(r[c]) for c in SUMMARY_COLUMNS) + "\n" for r in rows)
    heads = ["rule", "jobs", "total wall s", "max wall s", "max RSS MB"]
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Benchmarks</title><style>",
        "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse}",
        "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}td:first-child{text-align:left}",
        "</style></head><body>",
        f"<h1>Benchmarks of the jobs: study <code>{esc(study)}</code></h1>",
        f"<p>From Snakemake's benchmark files ({esc(str(root))}/): the last recorded run of every job. Wall "
        "seconds per job; max RSS is Snakemake's sampled peak resident memory of the job's processes (every "
        "0.5 s for the first 15 s, then every 30 s; NA when a job ended before its first sample).</p>",
        "<table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>",
        *("<tr>" + "".join(f"<td>{esc(_fmt(r[c]))}</td>" for c in SUMMARY_COLUMNS) + "</tr>" for r in rows),
        "</table></body></html>\n",
    ]
    with atomic_write(out_html) as fh:
        fh.write("\n".join(parts))
