"""Benchmarks: the per-method table on a tiny toy model, the summary of Snakemake's benchmark files, and
every rule writing one (outside results/, so the hash manifest never sees timings)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from entity_tracking.benchmark import (
    METHODS,
    Task,
    markdown_table,
    run_isolated,
    run_task,
    write_tables,
)
from entity_tracking.job_timings import summarise_benchmarks, write_benchmark_summary
from tests.conftest import REPO, TOY_MODELS

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "toy.yaml"
    path.write_text(json.dumps({"study": "toy", "models": {"toy-llama": TOY_MODELS["toy-llama"]}}))
    return path


def test_every_method_gets_a_row_with_positive_numbers(toy_study, tmp_path):
    base = Task("toy-llama", "", configfile=str(toy_study), records=14, dcm_steps=2, reference_senders=3)
    rows = [run_task(replace(base, method=m)) for m in METHODS]
    assert [r.method for r in rows] == list(METHODS)
    for row in rows:
        assert row.status == "ok", row
        assert row.wall_s > 0 and row.forward_equivalents > 0 and row.forwards_per_s > 0, row
        assert row.peak_rss_mb > 0 and row.delta_anon_mb is not None and row.gpu_peak_mb is None
        assert row.scope
    by = {r.method: r for r in rows}
    # the toy has 2 layers x 4 heads: the reference stops after 3 of 8 senders, 2 full forwards each, and
    # before them one counterfactual and one clean forward of the 14 prompts
    ref = by["path_patching_reference_stage"]
    assert ref.full_forwards == 14 * (2 + 2 * 3) and ref.forward_equivalents == pytest.approx(ref.full_forwards)
    assert ref.extra["senders"] == 3 and ref.extra["of_senders"] == 8 and ref.extra["whole_stage_s"] > ref.wall_s
    assert by["evaluation"].full_forwards == 14 and by["evaluation"].forward_equivalents == pytest.approx(14)
    assert by["path_patching_fast"].full_forwards == 28  # clean and counterfactual runs, shared by the 4 stages
    assert by["dcm"].full_forwards == 0  # cached clean runs: suffixes only
    table = markdown_table(rows)
    assert len(table.splitlines()) == 2 + len(METHODS) and "extrapolated" in table
    md, csv_path, js = write_tables(rows, tmp_path / "bench", {"device": "cpu"})
    assert len(list(csv.DictReader(csv_path.open()))) == len(METHODS)
    assert json.loads(js.read_text())["rows"][0]["method"] == METHODS[0] and md.read_text().startswith("| model")


def test_a_method_in_its_own_process_and_an_unavailable_model(toy_study, tmp_path):
    row = run_isolated(Task("toy-llama", "evaluation", configfile=str(toy_study), records=7))
    assert row.status == "ok" and row.wall_s > 0 and row.full_forwards == 7 and row.peak_rss_mb > 100
    missing = run_task(Task("qwen:qwen2.5-coder-0.5b", "evaluation", root=str(tmp_path)))  # not converted there
    assert missing.status.startswith("unavailable: model 'qwen2.5-coder-0.5b'") and missing.wall_s is None


def _tsv(path: Path, *lines: tuple[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    head = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    path.write_text(head + "".join(f"{s}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t1\t1\n" for s, rss in lines))


def test_summary_aggregates_benchmark_files_per_rule(tmp_path):
    root = tmp_path / "benchmarks"
    _tsv(root / "dataset.tsv", ("1.5", "NA"))
    _tsv(root / "evaluate" / "a.tsv", ("2.0", "300.25"))
    _tsv(root / "evaluate" / "b.tsv", ("4.0", "-"))  # never sampled
    _tsv(root / "faithfulness" / "c" / "m.tsv", ("3.0", "100"), ("5.0", "120"))  # two repeats of one job
    _tsv(root / "faithfulness" / "c" / "n.tsv", ("1.0", "90"))
    rows = summarise_benchmarks(root)
    assert rows == [
        {"rule": "evaluate", "jobs": 2, "total_s": 6.0, "max_s": 4.0, "max_rss_mb": 300.25},
        {"rule": "faithfulness", "jobs": 2, "total_s": 5.0, "max_s": 4.0, "max_rss_mb": 120.0},
        {"rule": "dataset", "jobs": 1, "total_s": 1.5, "max_s": 1.5, "max_rss_mb": None},
        {"rule": "all", "jobs": 5, "total_s": 12.5, "max_s": 4.0, "max_rss_mb": 300.25},
    ]
    write_benchmark_summary(root, tmp_path / "b.csv", tmp_path / "b.html", "default")
    lines = (tmp_path / "b.csv").read_text().splitlines()
    assert lines[0] == "rule,jobs,total_s,max_s,max_rss_mb" and lines[3] == "dataset,1,1.50,1.50,NA"
    assert "<td>faithfulness</td>" in (tmp_path / "b.html").read_text()
    assert summarise_benchmarks(tmp_path / "none") == []


def test_summary_rule_runs_and_is_in_the_report(tmp_path):
    (tmp_path / "results" / "default").mkdir(parents=True)
    (tmp_path / "results" / "default" / "manifest.json").write_text("{}")
    record = {
        "rule": "manifest",
        "wildcards": {},
        "outputs": {"results/default/manifest.json": hashlib.sha256(b"{}").hexdigest()},
    }
    (tmp_path / "results" / "default" / ".provenance").mkdir()
    (tmp_path / "results" / "default" / ".provenance" / "manifest.json").write_text(json.dumps(record))  # its maker
    _tsv(tmp_path / "logs" / "default" / "benchmarks" / "knockout" / "organism-base.tsv", ("7.25", "812.5"))
    cmd = [*SNAKEMAKE, "--directory", str(tmp_path), "--allowed-rules", "benchmark_summary"]
    target = ["--", "logs/default/benchmarks.csv"]
    run = subprocess.run([*cmd, "--cores", "1", *target], env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "logs/default/benchmarks.csv").read_text().splitlines()[1] == "knockout,1,7.25,7.25,812.50"
    assert (tmp_path / "logs/default/benchmarks/benchmark_summary.tsv").is_file()  # its own benchmark
    records = tmp_path / "results/default/.provenance"
    assert [p.name for p in records.rglob("*.json")] == ["manifest.json"]  # its own job has no record: not a result
    report = tmp_path / "report.html"
    run = subprocess.run([*cmd, "--report", str(report), *target], env=ENV, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "benchmarks.html" in report.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "args", [["--config", "retrain_base=True", "--", "all", "verify"], ["--configfile", "config/studies/qwen.yaml"]]
)
def test_every_job_writes_a_benchmark_file_under_logs(tmp_path, args):
    res = subprocess.run([*SNAKEMAKE, "-n", "--directory", str(tmp_path), *args], env=ENV, cwd=REPO,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    blocks = re.split(r"\n(?=(?:local)?rule \w+:)", res.stdout + res.stderr)
    jobs = [b for b in blocks if re.match(r"(?:local)?rule \w+:", b) and not re.match(r"(?:local)?rule all:", b)]
    assert len(jobs) > 20
    study = "qwen" if "qwen" in " ".join(args) else "default"
    for block in jobs:
        rule = re.match(r"(?:local)?rule (\w+):", block).group(1)
        if rule == "verify":  # no output and no benchmark file: Snakemake runs it every time it is asked for
            assert "\n    benchmark:" not in block and "\n    output:" not in block
            continue
        assert re.search(rf"\n    benchmark: logs/{study}/benchmarks/{rule}[/.]", block), block
    rules = {re.match(r"(?:local)?rule (\w+):", b).group(1) for b in jobs}
    assert {"train_base", "verify", "benchmark_summary"} <= rules or {"convert_model", "finetune"} <= rules
