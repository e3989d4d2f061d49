"""A DAG killed midway resumes with snakemake and keeps every finished output (atomic writes, Snakemake's markers)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def tiny_study(root: Path) -> Path:
    """A study of a 1-layer base checkpoint (sha256-checked) and two short fine-tunes, on a few records."""
    from entity_tracking.io import sha256_file
    from entity_tracking.organisms import organism_tokenizer, save_checkpoint
    from entity_tracking.toy import build_model

    tok = organism_tokenizer()
    model = build_model(tok, layers=1, hidden=32, heads=2, kv_heads=2, intermediate=64)
    save_checkpoint(model, tok, root / "base", {})
    tune = {"steps": 8, "batch_size": 4, "lr": 0.001, "seed": 1}
    splits = {"discovery": 2, "ablation": 1, "eval": 3, "dcm_train": 2, "dcm_val": 2, "dcm_test": 2}
    study = {
        "study": "tiny",
        "device": "cpu",
        "dataset": {"splits": splits},
        "models": {
            "base": {
                "role": "base",
                "source": "local",
                "path": str(root / "base"),
                "sha256": sha256_file(root / "base" / "model.safetensors"),
            },
            "chat": {
                "role": "finetuned",
                "base_model": "base",
                "source": "finetune",
                "finetune": {"corpus": "chat", "method": "full", **tune},
            },
            "lora": {
                "role": "finetuned",
                "base_model": "base",
                "source": "finetune",
                "finetune": {"corpus": "arithmetic", "method": "lora", "lora_rank": 8, "lora_alpha": 16, **tune},
            },
        },
    }
    path = root / "tiny.yaml"
    path.write_text(json.dumps(study))
    return path


def finished_outputs(log: str) -> list[str]:
    """The outputs of the jobs Snakemake's log reports finished (job blocks: ``rule X:``, ``output:``, ``jobid:``)."""
    outputs: dict[str, list[str]] = {}
    for block in re.findall(r"^(?:local)?rule \w+:\n((?:    .*\n)+)", log, flags=re.M):
        jobid = re.search(r"^    jobid: (\d+)$", block, flags=re.M)
        out = re.search(r"^    output: (.*)$", block, flags=re.M)
        if jobid and out:
            outputs[jobid.group(1)] = out.group(1).split(", ")
    return [p for jobid in re.findall(r"^Finished jobid: (\d+)", log, flags=re.M) for p in outputs.get(jobid, [])]


def snapshot(root: Path, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    files = []
    for path in map(root.joinpath, paths):
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return {str(f.relative_to(root)): (f.stat().st_mtime_ns, f.read_bytes()) for f in files}


@pytest.mark.workflow
def test_a_killed_run_resumes_without_recomputing_finished_outputs(tmp_path: Path):
    """Killed (SIGKILL) after a few jobs of the accuracy table's DAG (data, fine-tunes, model cards, evaluations)."""
    study = tiny_study(tmp_path)
    args = ["--configfile", str(study), "--directory", str(tmp_path), "results/tiny/accuracy.csv"]
    log_file = tmp_path / "killed.log"
    with log_file.open("w") as log:  # one job at a time, so the kill lands between finished and unstarted jobs
        proc = subprocess.Popen(
            [*SNAKEMAKE, "--cores", "1", *args], stdout=log, stderr=subprocess.STDOUT, env=ENV, start_new_session=True
        )
    deadline = time.monotonic() + 600
    while len(re.findall(r"^Finished jobid", log_file.read_text(), flags=re.M)) < 4:
        assert proc.poll() is None, log_file.read_text()[-3000:]
        assert time.monotonic() < deadline, "the DAG did not get going"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # a hard kill: the scheduler and its running job die at once
    proc.wait()
    finished = snapshot(tmp_path, finished_outputs(log_file.read_text()))
    assert len(finished) >= 4 and not (tmp_path / "results" / "tiny" / "accuracy.csv").exists()

    # A hard kill leaves Snakemake's lock behind: --unlock, then the same command resumes the DAG.
    unlock = subprocess.run([*SNAKEMAKE, "--unlock", *args], env=ENV, capture_output=True, text=True)
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    res = subprocess.run([*SNAKEMAKE, "--cores", "2", *args], env=ENV, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert (tmp_path / "results" / "tiny" / "accuracy.csv").is_file()
    again = snapshot(tmp_path, list(finished))
    assert [p for p in finished if again[p] != finished[p]] == []  # not one finished output was rewritten
    assert not list((tmp_path / "results").rglob("*.tmp"))  # no temporary file of the killed job is left

    # A scheduling hint is no rerun trigger: reserving other memory for a fine-tune reruns nothing.
    hint = tmp_path / "hint.yaml"
    hint.write_text(json.dumps({"models": {"lora": {"train_mem_mb": 5000}, "base": {"train_mem_mb": 3000}}}))
    plan = subprocess.run(
        [*SNAKEMAKE, "-n", "--configfile", str(study), str(hint), *args[2:]], env=ENV, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "Nothing to be done" in plan.stdout + plan.stderr, (plan.stdout + plan.stderr)[-3000:]
