"""What a job reads is what its maker recorded: entity_tracking.integrity on a small hand-made results tree,
and the messages that tell a generated file (remake it) from a user's input (fix it)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from entity_tracking.integrity import IntegrityError, check_job, check_run, problems
from entity_tracking.io import damaged_fix, is_workflow_output, read_json, read_jsonl, read_safetensors
from tests.test_provenance import STUDY, job, run_mini

RES = Path("results") / STUDY


@pytest.fixture
def mini(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A two-job run made by hand in a temporary working directory, with its records."""
    monkeypatch.chdir(tmp_path)
    run_mini()
    return tmp_path


def test_unchanged_generated_inputs_pass_and_user_inputs_are_not_judged(mini):
    reader = job("report", [str(RES / "data.json"), str(RES / "table.json"), "notes.txt"], [], {})
    Path("notes.txt").write_text("a user's file: no job made it, so there is nothing to compare it with\n")
    check_job(reader)  # no error


def test_an_edited_intermediate_is_named_with_the_job_that_made_it_and_the_fix(mini):
    table = RES / "table.json"
    table.write_text(table.read_text().replace("2.0", "2.5"))
    reader = job("report", [str(RES / "data.json"), str(table)], [], {})
    with pytest.raises(IntegrityError) as err:
        check_job(reader)
    msg = str(err.value)
    assert f"{table}: changed after job table[model=m] wrote it" in msg
    assert "job report would read generated files" in msg and f"rm -r {table}" in msg
    assert "data.json" not in msg.split("\n", 1)[1].split("Nothing")[0]  # only the changed file is listed


def test_figures_are_checked_like_results(mini):
    figure = Path("figures") / STUDY / "f.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(b"png")
    (line,) = problems([str(figure), "figures/README.md"], RES)  # the figure is generated, the README is not
    assert line.startswith(f"{figure}: no job of this workflow recorded it")


def test_a_generated_file_that_no_job_recorded_is_refused(mini):
    stray = RES / "stray.json"
    stray.write_text("{}\n")
    assert problems([str(stray)], RES) == [
        f"{stray}: no job of this workflow recorded it (made by hand, or by a job that did not finish)"
    ]
    assert problems([str(RES / "missing.json")], RES) == []  # a missing input is Snakemake's to plan


def test_a_checkpoint_directory_is_checked_file_by_file(mini):
    ckpt = RES / "checkpoints" / "finetuned" / "m"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    (ckpt / "config.json").write_text("{}")
    from entity_tracking.provenance import write_record

    write_record(job("finetune", [], [str(ckpt)], {}, model="m"))
    assert problems([str(ckpt)], RES) == []
    (ckpt / "model.safetensors").write_bytes(b"weightz")
    (line,) = problems([str(ckpt)], RES)
    assert line.startswith(f"{ckpt}/model.safetensors: changed after job finetune[model=m]")
    with pytest.raises(IntegrityError, match=f"rm -r {ckpt}$"):  # the whole checkpoint is remade
        check_job(job("evaluate", [str(ckpt)], [], {}))


def test_the_run_check_skips_what_the_run_remakes(mini):
    table = RES / "table.json"
    table.write_text("{}\n")  # damaged, but the run remakes it before anything reads it
    remake = SimpleNamespace(input=[str(RES / "data.json")], output=[str(table)])
    read = SimpleNamespace(input=[str(table)], output=[str(RES / "report.json")])
    check_run(SimpleNamespace(needrun_jobs=lambda: [remake, read]), RES)
    with pytest.raises(IntegrityError, match=r"this run \(1 jobs\) would read"):
        check_run(SimpleNamespace(needrun_jobs=lambda: [read]), RES)


def test_messages_tell_a_generated_file_from_a_users_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not is_workflow_output("figures/README.md") and not is_workflow_output("results/README.md")
    for path in ("results/default/eval/m.json", "figures/default/cmap.png", "logs/default/x.log"):
        assert is_workflow_output(path) and "rerun snakemake" in damaged_fix(path)
    for path in ("circuits/mine.json", "results/expected/default-manifest.json", "config/config.yaml"):
        assert not is_workflow_output(path)
        assert "an input of the study" in damaged_fix(path) and "rm " not in damaged_fix(path)
    Path("mine.json").write_text('{"value_fetcher": [[0, 1]],}')
    with pytest.raises(ValueError, match=r"mine.json is not valid JSON .* an input of the study"):
        read_json("mine.json")
    generated = Path("results/default/data/eval.jsonl")
    generated.parent.mkdir(parents=True)
    generated.write_text(json.dumps({"id": 1}) + "\n{broken\n")
    with pytest.raises(ValueError, match=r"line 2, is not valid JSON .* Fix: delete it \(rm results/default/data"):
        read_jsonl(generated)
    Path("results/default/means.safetensors").write_bytes(b"\x10\x00\x00")
    with pytest.raises(ValueError, match=r"not a readable safetensors file .* generated by the workflow"):
        read_safetensors("results/default/means.safetensors")


def test_a_file_is_accepted_when_any_job_that_wrote_it_recorded_its_bytes(mini):
    """An old record left by a renamed rule does not make a good file look changed."""
    from entity_tracking.provenance import write_record

    table = RES / "table.json"
    good = table.read_bytes()
    table.write_text('{"old": true}\n')
    write_record(job("aaa_old_rule", [], [str(table)], {}))  # another job's record of other bytes
    table.write_bytes(good)
    assert problems([str(table)], RES) == []  # the table job recorded these bytes
    table.write_text("{}\n")
    (line,) = problems([str(table)], RES)
    assert line.startswith(f"{table}: changed after job ")
