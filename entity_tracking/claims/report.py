"""Rule claims: evaluate every claim on a study's results and write the report."""

from __future__ import annotations

from pathlib import Path

from entity_tracking.claims.headline import headline_claims
from entity_tracking.claims.qualitative import QUALITATIVE
from entity_tracking.claims.render import write_claims, write_claims_html
from entity_tracking.claims.results import Claim, Results, Study


def evaluate_claims(r: Results) -> list[Claim]:
    """Every qualitative claim, then every headline number."""
    return [c for fn in QUALITATIVE for c in fn(r)] + headline_claims(r)


def run_claims(
    root: str | Path, study: Study, out_md: str | Path, out_json: str | Path, out_html: str | Path
) -> list[Claim]:
    """Rule claims: evaluate every claim on the study's results under ``root`` and write the three reports."""
    claims = evaluate_claims(Results(root, study))
    write_claims(claims, study.name, out_md, out_json)
    write_claims_html(claims, study.name, out_html)
    return claims
