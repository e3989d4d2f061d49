"""The claims report's writers: markdown and JSON (:func:`write_claims`), HTML (:func:`write_claims_html`)."""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from entity_tracking.claims.results import FAIL, NOT_APPLICABLE, NOT_COMPUTED, PASS, VERDICTS, Claim
from entity_tracking.io import atomic_write, write_json


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def summary(claims: Iterable[Claim]) -> dict[str, dict[str, int]]:
    """Counts of verdicts per kind."""
    out: dict[str, dict[str, int]] = {}
    for c in claims:
        out.setdefault(c.kind, dict.fromkeys(VERDICTS, 0))[c.verdict] += 1
    return out


INTRO = (
    "The paper's claims and numbers beside ours, each with a verdict: pass, fail, not computed (an input "
    "does not exist yet; the note names it) or not applicable. Headline numbers are checked on the paper "
    "study only; qualitative claims on every study's models. Criteria and tolerances: "
    "`entity_tracking/claims/` and docs/claims.md. In brackets after each claim: where the original "
    "repository gives the paper's number."
)
SECTIONS = (
    ("qualitative", "Qualitative claims of the paper, tested in this study's models"),
    ("headline", "Headline numbers of the paper, ours beside them"),
)
COLUMNS = ("id", "claim", "paper", "ours", "criterion", "verdict", "note")


def _cells(c: Claim) -> list[str]:
    return [c.id, f"{c.statement} ({c.source})", _fmt(c.paper), _fmt(c.ours), c.tolerance, c.verdict, c.note]


def write_claims(claims: list[Claim], study: str, out_md: str | Path, out_json: str | Path) -> None:
    """The report as markdown (a table per kind) and as JSON (every field of every claim)."""
    counts = summary(claims)
    write_json(out_json, {"study": study, "summary": counts, "claims": [asdict(c) for c in claims]})
    lines = [f"# Claims report: study `{study}`", "", INTRO, ""]
    for kind, title in SECTIONS:
        tally = ", ".join(f"{n} {v}" for v, n in counts.get(kind, {}).items() if n)
        lines += [f"## {title}", "", f"Verdicts: {tally or 'none'}.", ""]
        lines += ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
        for c in claims:
            if c.kind == kind:
                cells = [s.replace("|", "\\|").replace("\n", " ") for s in _cells(c)]
                cells[5] = f"**{cells[5]}**"
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    with atomic_write(out_md) as fh:
        fh.write("\n".join(lines))


VERDICT_COLORS = {PASS: "#d9f2d9", FAIL: "#f8d7d7", NOT_COMPUTED: "#eeeeee", NOT_APPLICABLE: "#ffffff"}


def write_claims_html(claims: list[Claim], study: str, out_html: str | Path) -> None:
    """A self-contained HTML page of the same tables, for the Snakemake report."""
    esc = html.escape
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Claims report</title><style>",
        "body{font-family:sans-serif;font-size:13px;margin:1em}table{border-collapse:collapse;width:100%}",
        "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}",
        "</style></head><body>",
        f"<h1>Claims report: study <code>{esc(study)}</code></h1><p>{esc(INTRO)}</p>",
    ]
    counts = summary(claims)
    for kind, title in SECTIONS:
        tally = ", ".join(f"{n} {v}" for v, n in counts.get(kind, {}).items() if n)
        parts += [f"<h2>{esc(title)}</h2><p>Verdicts: {esc(tally or 'none')}.</p><table><tr>"]
        parts += [f"<th>{esc(c)}</th>" for c in COLUMNS] + ["</tr>"]
        for c in claims:
            if c.kind == kind:
                cells = [f"<td>{esc(s)}</td>" for s in _cells(c)]
                cells[5] = f"<td style='background:{VERDICT_COLORS[c.verdict]}'><b>{esc(c.verdict)}</b></td>"
                parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    with atomic_write(out_html) as fh:
        fh.write("\n".join(parts))
