"""runtime.job_context: a rule script's set-up, the integrity check of its inputs, and its job record."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from entity_tracking.integrity import IntegrityError
from entity_tracking.io import write_json
from entity_tracking.runtime import job_context

RECORD = Path("results/mini/.provenance/r.json")
OUT = Path("results/mini/out.json")


class Named(dict):
    """Stands in for Snakemake's named lists (``.items()`` and attribute access)."""

    __getattr__ = dict.__getitem__


def fake_job(inputs: list[str] | None = None) -> SimpleNamespace:
    """A rule script's ``snakemake`` object: two threads in the rule, none in the config."""
    return SimpleNamespace(
        rule="r",
        input=inputs or [],
        output=[str(OUT)],
        params=Named(),
        wildcards=Named(),
        config={"study": "mini"},
        threads=2,
        log=["logs/mini/r.log"],
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_runtime) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_block_that_ends_normally_with_every_output_is_recorded(workdir: Path):
    with job_context(fake_job(), seed=7) as log:
        assert torch.get_num_threads() == 2  # the rule's threads
        write_json(OUT, {"x": 1})
        log.info("wrote %s", OUT)
        assert not RECORD.exists()  # only when the block ends
    record = json.loads(RECORD.read_text())
    assert (record["seed"], record["threads"], list(record["outputs"])) == (7, 2, [str(OUT)])
    assert f"INFO entity_tracking: wrote {OUT}" in Path("logs/mini/r.log").read_text()


def test_a_block_that_raises_is_not_recorded_and_the_error_propagates(workdir: Path):
    with pytest.raises(RuntimeError, match="after writing"), job_context(fake_job()):
        write_json(OUT, {"x": 1})
        raise RuntimeError("the job failed after writing its output")
    assert OUT.exists() and not RECORD.exists()


def test_no_record_without_every_output_or_with_record_false(workdir: Path):
    with job_context(fake_job()):
        pass  # the output is missing
    assert not RECORD.exists()
    with job_context(fake_job(), record=False):
        write_json(OUT, {"x": 1})
    assert not RECORD.exists()


def test_generated_inputs_are_checked_before_the_block_runs(workdir: Path):
    write_json("results/mini/data.json", {"x": 1})  # a generated file that no job recorded
    ran = []
    with pytest.raises(IntegrityError), job_context(fake_job(["results/mini/data.json"])):
        ran.append(True)
    assert ran == [] and not RECORD.exists()
