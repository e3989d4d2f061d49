"""Figures: every plot function on synthetic result files, byte determinism, and the rules through snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from entity_tracking import paper
from entity_tracking.figures import PLOTS
from tests.conftest import REPO
from tests.synthetic import DEFAULT_MODELS, PAPER_MODELS, record_results, write_results

LABELS = {m: spec["label"] for m, spec in DEFAULT_MODELS.items()}


def _circuit(res: Path, model: str, prefix: str) -> dict[str, Path]:
    where = res / "circuits" / model
    return {
        f"{prefix}_scores": where / "path_patching.safetensors",
        f"{prefix}_minimality": where / "minimality.json",
        f"{prefix}_circuit": where / "circuit.json",
    }


# figure name -> the keyword arguments of its plot function, from a results directory
CALLS: dict[str, Callable[[Path], dict]] = {
    "accuracy": lambda res: {"accuracy": res / "accuracy.csv", "chance": 1 / 7, "paper": {"organism-base": 0.66}},
    "causal_impact": lambda res: {
        **_circuit(res, "organism-chat", "ft"),
        **_circuit(res, "organism-base", "base"),
        "ft_label": "Chat-tuned",
        "base_label": "Base",
    },
    "completeness": lambda res: {
        "completeness": [res / "completeness" / f"{m}.json" for m in DEFAULT_MODELS],
        "labels": LABELS,
    },
    "faithfulness": lambda res: {"faithfulness": res / "faithfulness.csv", "labels": LABELS},
    "circuit_diagram": lambda res: {
        "circuit": res / "circuits" / "organism-base" / "circuit.json",
        "path_patching": res / "circuits" / "organism-base" / "path_patching.json",
        "bootstrap": res / "circuits" / "organism-base" / "bootstrap.csv",
        "label": "Base organism",
    },
    "dcm": lambda res: {
        "dcm": res / "dcm.csv",
        "circuit": "organism-base",
        "label": "Base organism",
        "paper": {("pos_transmitter", "positional"): 0.362},
    },
    "activation_patching": lambda res: {
        "activation_patching": res / "activation_patching.csv",
        "circuit": "organism-chat",
        "models": list(DEFAULT_MODELS),
        "labels": LABELS,
    },
    "cmap": lambda res: {"cmap": res / "cmap.csv", "labels": LABELS, "paper": {"organism-chat": {"full": 0.7}}},
    "knockout": lambda res: {"knockout": res / "knockout" / "organism-base.json", "label": "Base organism"},
}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_results(root)
    return root / "results" / "default"


def test_every_plot_has_a_test():
    assert set(CALLS) == set(PLOTS)


def _draw(name: str, res: Path, out: Path) -> tuple[Path, Path]:
    pdf, png = out / f"{name}.pdf", out / f"{name}.png"
    PLOTS[name](**CALLS[name](res), out_pdf=pdf, out_png=png)
    return pdf, png


@pytest.mark.parametrize("name", sorted(CALLS))
def test_plot_writes_a_pdf_and_a_png(name, results, tmp_path):
    pdf, png = _draw(name, results, tmp_path)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 1000
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 1000


def test_figures_are_byte_deterministic(results, tmp_path):
    for name in ("causal_impact", "faithfulness", "dcm", "activation_patching", "cmap", "knockout"):
        first = _draw(name, results, tmp_path / "a")
        second = _draw(name, results, tmp_path / "b")
        for a, b in zip(first, second, strict=True):
            assert a.read_bytes() == b.read_bytes(), a.name


def test_paper_sized_circuits_and_missing_cells_draw(tmp_path):
    """Llama's geometry (32 x 32 heads, a 72-head circuit) and a faithfulness table with a pair missing."""
    sizes = {"value_fetcher": 40, "pos_transmitter": 7, "pos_detector": 20, "struct_reader": 5}
    write_results(
        tmp_path,
        PAPER_MODELS,
        study="paper",
        layers=32,
        heads=32,
        sizes={"llama-7b": sizes},
        external=("published-llama",),
    )
    res = tmp_path / "results" / "paper"
    llama = res / "circuits" / "llama-7b"
    PLOTS["circuit_diagram"](
        llama / "circuit.json",
        llama / "path_patching.json",
        llama / "bootstrap.csv",
        tmp_path / "c.pdf",
        tmp_path / "c.png",
    )
    PLOTS["causal_impact"](
        **_circuit(res, "goat-7b", "ft"),
        **_circuit(res, "llama-7b", "base"),
        out_pdf=tmp_path / "i.pdf",
        out_png=tmp_path / "i.png",
    )
    extra = ["published-llama", *PAPER_MODELS]
    PLOTS["faithfulness"](res / "faithfulness.csv", tmp_path / "f.pdf", tmp_path / "f.png", circuits=extra)
    dcm_paper = {gd: v for gd, (_, v) in paper.DCM_LLAMA.items()}
    PLOTS["dcm"](res / "dcm.csv", tmp_path / "d.pdf", tmp_path / "d.png", circuit="published-llama", paper=dcm_paper)
    PLOTS["activation_patching"](res / "activation_patching.csv", tmp_path / "a.pdf", tmp_path / "a.png", "llama-7b")
    PLOTS["cmap"](res / "cmap.csv", tmp_path / "m.pdf", tmp_path / "m.png", paper=paper.CMAP)
    knockout = res / "knockout" / "llama-7b.json"
    PLOTS["knockout"](knockout, tmp_path / "k.pdf", tmp_path / "k.png", paper=paper.KNOCKOUT_CURVES)
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("c.png", "i.png", "f.png", "d.png", "a.png", "m.png"))
    assert (tmp_path / "k.png").stat().st_size > 1000


def test_circuit_diagram_shades_heads_by_their_bootstrap_frequency_and_names_no_signal(tmp_path):
    from entity_tracking.figures.circuit_diagram import _header, box_style, read_frequencies

    write_results(tmp_path, no_signal={"organism-base": "pos_detector"})
    where = tmp_path / "results" / "default" / "circuits" / "organism-base"
    freq = read_frequencies(where / "bootstrap.csv")
    assert {g for g, _ in freq} == {"value_fetcher", "pos_transmitter", "pos_detector"}  # the reader was not run
    rare, often = box_style("value_fetcher", (2, 1), True, 0.1), box_style("value_fetcher", (2, 1), True, 0.9)
    assert (
        rare["facecolor"][3] < often["facecolor"][3] and rare["text"] == "L2H1\n0.10" and often["text"].endswith("0.90")
    )
    assert box_style("value_fetcher", (2, 1), False, 0.5)["linestyle"] == "--"
    assert _header("pos_detector", 0, "no signal").endswith("no signal")
    assert _header("struct_reader", 0, "not run").endswith("not run")
    assert _header("value_fetcher", 3, "signal").endswith("3 heads")
    PLOTS["circuit_diagram"](where / "circuit.json", where / "path_patching.json", where / "bootstrap.csv",
                             tmp_path / "c.pdf", tmp_path / "c.png")  # fmt: skip
    assert (tmp_path / "c.png").stat().st_size > 1000


def test_figure_and_claims_rules_run_through_snakemake_and_the_report(tmp_path):
    """The figure rules and rule claims on a synthetic results tree (upstream rules switched off), then --report."""
    write_results(tmp_path)
    record_results(tmp_path)  # the rules check what they read against its maker's record
    figures = ["accuracy", "completeness", "faithfulness", "causal_impact_organism-chat", "circuit_organism-base"]
    figures += ["dcm_organism-base", "activation_patching_organism-chat", "cmap", "knockout_organism-arith-full"]
    targets = [f"figures/default/{f}.{ext}" for f in figures for ext in ("pdf", "png")] + ["results/default/claims.md"]
    rules = ["claims", *(f"figure_{n}" for n in PLOTS)]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        [*cmd, "--cores", "2", "--allowed-rules", *rules, "--", *targets],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert all((tmp_path / t).stat().st_size > 1000 for t in targets)
    report = tmp_path / "report.html"
    run = subprocess.run(
        [*cmd, "--report", str(report), "--allowed-rules", *rules, "--", *targets],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    html = report.read_text(encoding="utf-8")
    assert "claims.html" in html and "accuracy.png" in html and "Causal impact of heads" in html
    assert "cmap.png" in html and "Attention knockout" in html and "DCM on the circuit of" in html
