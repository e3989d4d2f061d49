"""The SLURM profile (profiles/slurm) on a real single-node SLURM, which `bash .ci/slurm.sh` starts (as root) before
it runs this module with ET_SLURM_TEST=1; elsewhere the module is skipped. A small target of the CPU default runs
through the executor plugin; every job must be a completed SLURM job on the partition the profile names, and every
output must equal the committed expected manifest byte for byte."""

import json
import os
import re
import subprocess
import sys

import pytest

from entity_tracking.io import sha256_file
from tests.conftest import REPO

pytestmark = [
    pytest.mark.workflow,
    pytest.mark.skipif(
        os.environ.get("ET_SLURM_TEST") != "1",
        reason="needs the single-node SLURM that `bash .ci/slurm.sh` starts as root (CI's SLURM step runs this)",
    ),
]

TARGET = "results/default/eval/organism-base.json"
# rule -> the partition and memory (MB) profiles/slurm asks for it
EXPECTED_JOBS = {"dataset": ("cpu", 8000), "model_card": ("gpu", 64000), "evaluate": ("gpu", 64000)}


def _job(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def _mb(size: str) -> float:
    """SLURM's memory notation (8000M, 62.50G) in MB."""
    return float(size[:-1]) * {"M": 1, "G": 1024, "T": 1024**2}[size[-1]]


def test_slurm_profile_runs_every_job_as_a_slurm_job(tmp_path):
    cmd = [
        *("timeout", "-s", "KILL", "240"),  # the plugin can wait forever on a status it never gets
        *(sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")),
        *("--profile", str(REPO / "profiles" / "slurm"), "--workflow-profile", "none"),
        *("--directory", str(tmp_path), TARGET),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    log = res.stdout + res.stderr
    assert res.returncode == 0, log[-4000:]

    submitted = re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+)", log)
    jobs = {_job(i)["Comment"].removeprefix("rule_").split("_wildcards_")[0]: _job(i) for i in submitted}
    assert len(submitted) == len(jobs) == len(EXPECTED_JOBS), log[-4000:]
    for rule, (partition, mem_mb) in EXPECTED_JOBS.items():
        job = jobs[rule]
        assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert (job["Partition"], _mb(job["MinMemoryNode"])) == (partition, mem_mb), job
        assert job["WorkDir"] == str(tmp_path)

    expected = json.loads((REPO / "results" / "expected" / "default-manifest.json").read_text())["files"]
    made = sorted(
        str(p.relative_to(tmp_path))
        for p in (tmp_path / "results").rglob("*")
        if p.is_file() and "/.provenance/" not in str(p)
    )
    assert TARGET in made and len(made) == 10  # six data splits, the data manifest, the model card, eval json and csv
    for name in made:
        assert sha256_file(tmp_path / name) == expected[name], name
