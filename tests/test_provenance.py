"""Job records, the hash manifest and verify on a small hand-made results tree; atomic writes."""

from __future__ import annotations

import json
import shutil
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from entity_tracking.io import atomic_dir, atomic_write, write_json
from entity_tracking.provenance import (
    REPO,
    ManifestError,
    build_manifest,
    canonical,
    portable,
    read_records,
    recorded,
    write_manifest,
    write_record,
)
from entity_tracking.verify import CROSS_RTOL, diff_values, verify, write_values
from entity_tracking.verify import main as verify_main

STUDY = "mini"
CONFIG = {"study": STUDY, "seed": 3, "models": {"m": {"path": f"{REPO}/models/organisms/base"}}}


class Named(dict):
    """Stands in for Snakemake's named lists (``.items()`` and attribute access)."""

    __getattr__ = dict.__getitem__


def job(rule: str, inputs: list[str], outputs: list[str], params: dict[str, Any], **wildcards: str) -> SimpleNamespace:
    return SimpleNamespace(
        rule=rule,
        input=inputs,
        output=outputs,
        params=Named(params),
        wildcards=Named(wildcards),
        config=CONFIG,
    )


def run_mini(scale: float = 2.0) -> dict[str, Any]:
    """A two-job 'workflow' run by hand in the current directory: data -> table (a parameter), records, manifest."""
    res = Path("results") / STUDY
    write_json(res / "data.json", {"values": [1.0, 2.0, 3.0]})
    write_record(job("data", [f"{REPO}/config/config.yaml"], [str(res / "data.json")], {}), seed=3, threads=1)
    values = json.loads((res / "data.json").read_text())["values"]
    write_json(res / "table.json", {"scaled": [v * scale for v in values], "device": "cpu"})
    table = job("table", [str(res / "data.json")], [str(res / "table.json")], {"scale": scale}, model="m")
    write_record(table, seed=3, threads=1)
    manifest = write_manifest(STUDY, [str(res / "table.json")], CONFIG, res / "manifest.json", res / "prov.json")
    return manifest


@pytest.fixture
def mini(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    run_mini()
    return tmp_path


def _expected(root: Path) -> Path:
    expected = root / "expected.json"
    expected.write_bytes((root / "results" / STUDY / "manifest.json").read_bytes())
    return expected


def test_manifest_records_hashes_inputs_params_and_code(mini: Path):
    manifest = json.loads((mini / "results" / STUDY / "manifest.json").read_text())
    assert set(manifest["files"]) == {f"results/{STUDY}/data.json", f"results/{STUDY}/table.json"}
    assert list(manifest["sources"]) == ["{repo}/config/config.yaml"]  # a file no job made
    table = manifest["jobs"]["table[model=m]"]
    assert table["params"] == {"scale": 2.0} and table["seed"] == 3 and table["wildcards"] == {"model": "m"}
    assert table["inputs"] == [f"results/{STUDY}/data.json"] and table["outputs"] == [f"results/{STUDY}/table.json"]
    record = json.loads((mini / "results" / STUDY / ".provenance" / "table" / "model=m.json").read_text())
    assert record["inputs"] == {f"results/{STUDY}/data.json": manifest["files"][f"results/{STUDY}/data.json"]}
    assert len(table["code"]["sources_sha256"]) == 64 and "git_commit" in table["code"]
    assert manifest["config"]["models"]["m"]["path"] == "{repo}/models/organisms/base"  # no absolute path
    assert (mini / "results" / STUDY / "manifest.json").read_text() == canonical(manifest)
    prov = json.loads((mini / "results" / STUDY / "prov.json").read_text())
    assert prov["device"]["gpu"] == "cpu" and prov["environment"]["packages"]["torch"].startswith("2.")
    assert list(prov["jobs_per_environment"].values()) == [2]


def test_verify_passes_on_an_untouched_run(mini: Path, capsys):
    assert verify_main(["--study", STUDY, "--root", str(mini), "--expected", str(_expected(mini))]) == 0
    assert "OK" in capsys.readouterr().out


def test_tampered_file_fails_naming_it(mini: Path, capsys):
    expected = _expected(mini)
    table = mini / "results" / STUDY / "table.json"
    table.write_text(table.read_text().replace("2.0", "2.5"))
    assert verify_main(["--study", STUDY, "--root", str(mini), "--expected", str(expected)]) == 1
    err = capsys.readouterr().err
    assert f"CHANGED  results/{STUDY}/table.json" in err and "data.json" not in err


def test_deleted_file_fails_naming_it_missing(mini: Path):
    (mini / "results" / STUDY / "data.json").unlink()
    failures, _ = verify(mini, STUDY)
    assert failures == [f"MISSING  results/{STUDY}/data.json"]


def test_edited_parameter_changes_the_record_and_fails_against_the_expected(mini: Path):
    expected = _expected(mini)
    before = json.loads(expected.read_text())
    run_mini(scale=3.0)  # the same 'workflow' with another parameter
    after = json.loads((mini / "results" / STUDY / "manifest.json").read_text())
    assert after["jobs"]["table[model=m]"]["params"] == {"scale": 3.0}
    assert after["files"][f"results/{STUDY}/table.json"] != before["files"][f"results/{STUDY}/table.json"]
    failures, _ = verify(mini, STUDY, expected=expected)
    assert "PARAMS   table[model=m]: params differs from the expected (scale)" in failures
    assert f"DIFFERS  results/{STUDY}/table.json (sha256 differs from the expected manifest)" in failures
    assert not any("data.json" in f for f in failures)  # what did not change is not blamed


def test_manifest_refuses_records_that_do_not_match_the_files(mini: Path):
    res = mini / "results" / STUDY
    (res / "data.json").write_text('{"values": [9]}\n')  # edited after its job, before the manifest
    with pytest.raises(ManifestError, match=f"results/{STUDY}/data.json changed since its job recorded it"):
        build_manifest(STUDY, [str(res / "table.json")], CONFIG, read_records(res))
    with pytest.raises(ManifestError, match="no job record"):
        build_manifest(STUDY, [str(res / "prov.json")], CONFIG, read_records(res))


def test_tolerance_against_a_reference_tree(mini: Path, tmp_path_factory):
    """A GPU-like run: numbers off by 1e-9 pass with a tolerance and a reference tree holding the expected files."""
    expected = _expected(mini)
    reference = tmp_path_factory.mktemp("reference")
    shutil.copytree(mini / "results", reference / "results")  # e.g. the authors' published results
    res = mini / "results" / STUDY
    table = res / "table.json"
    write_json(table, {"scaled": [2.0 + 1e-9, 4.0, 6.0], "device": "cuda:0"})
    write_record(job("table", [f"results/{STUDY}/data.json"], [str(table)], {"scale": 2.0}, model="m"), 3, 1)
    write_manifest(STUDY, [str(table)], CONFIG, res / "manifest.json", res / "prov.json")
    args = ["--study", STUDY, "--root", str(mini), "--expected", str(expected)]
    assert verify_main(args) == 1  # bytes differ
    assert verify_main([*args, "--reference", str(reference), "--rtol", "1e-6"]) == 0
    write_json(table, {"scaled": [2.1, 4.0, 6.0], "device": "cpu"})
    write_record(job("table", [f"results/{STUDY}/data.json"], [str(table)], {"scale": 2.0}, model="m"), 3, 1)
    write_manifest(STUDY, [str(table)], CONFIG, res / "manifest.json", res / "prov.json")
    failures, _ = verify(mini, STUDY, expected=expected, reference=reference, rtol=1e-6)
    assert failures == [f"DIFFERS  results/{STUDY}/table.json beyond rtol=1e-06, atol=0: scaled[0]: 2.1 != 2.0"]


def _remake_table(root: Path, content: dict[str, Any]) -> None:
    """The table job of ``run_mini`` rerun with other results (as on other hardware): record and manifest."""
    res = root / "results" / STUDY
    write_json(res / "table.json", content)
    write_record(
        job("table", [f"results/{STUDY}/data.json"], [str(res / "table.json")], {"scale": 2.0}, model="m"), 3, 1
    )
    write_manifest(STUDY, [str(res / "table.json")], CONFIG, res / "manifest.json", res / "prov.json")


def test_other_arithmetic_is_compared_by_value(mini: Path, capsys):
    """Bytes must match when the expected run had this run's arithmetic; with another processor, a JSON file
    whose numbers moved in their last digits passes against the expected values, and one that moved more fails."""
    expected = _expected(mini)
    manifest = json.loads(expected.read_text())
    assert set(manifest["arithmetic"]) == {"cpu", "cpu_capability", "torch", "gpu"} and manifest["arithmetic"]["cpu"]
    values = mini / "values.json"
    assert write_values(manifest, mini, values) == 2  # data.json and table.json
    stored = json.loads(values.read_text())["files"][f"results/{STUDY}/table.json"]
    assert stored["data"] == {"scaled": [2.0, 4.0, 6.0], "device": "cpu"} and len(stored["sha256"]) == 64
    _remake_table(mini, {"scaled": [2.0 * (1 + CROSS_RTOL / 10), 4.0, 6.0], "device": "cpu"})
    args = ["--study", STUDY, "--root", str(mini), "--expected", str(expected), "--values", str(values)]
    assert verify_main(args) == 1  # the same arithmetic: the bytes must match
    assert f"DIFFERS  results/{STUDY}/table.json (sha256 differs from the expected manifest)" in capsys.readouterr().err
    expected.write_text(json.dumps({**manifest, "arithmetic": {**manifest["arithmetic"], "cpu": "Another CPU"}}))
    assert verify_main(args) == 0
    out = capsys.readouterr().out
    assert "differs from the expected run's (Another CPU" in out
    assert "1 files are byte-identical; of the others, 0 hold the expected findings" in out
    assert "1 JSON/CSV files are equal within rtol=0.001, atol=1e-06" in out and "0 moved more" in out
    _remake_table(mini, {"scaled": [2.1, 4.0, 6.0], "device": "cpu"})
    failures, notes = verify(mini, STUDY, expected=expected, values=values)
    assert failures == []  # a number that moved more is listed, not failed: it is not a finding
    assert f"MOVED    results/{STUDY}/table.json beyond rtol=0.001, atol=1e-06: scaled[0]: 2.1 != 2.0" in notes
    failures, _ = verify(mini, STUDY, expected=expected)  # no expected values: nothing to compare with
    assert failures == [f"DIFFERS  results/{STUDY}/table.json (sha256 differs from the expected manifest)"]


@pytest.mark.parametrize("case", ["moved", "noise", "verdict", "circuit", "no values"])
def test_findings_must_not_move_across_arithmetic(tmp_path: Path, case: str):
    """Across arithmetic, a claim's verdict or a circuit that differs fails; the claims' numbers and notes may move."""
    from entity_tracking.verify import _compare_across

    claims = {"claims": [{"id": "Q.a", "verdict": "pass", "ours": 0.5, "note": "p = 1e-3"}]}
    circuit = {"value_fetcher": [[1, 2]], "pos_transmitter": []}
    ours_claims = {"claims": [{**claims["claims"][0], "ours": 0.5004 if case == "noise" else 0.6, "note": "p = 2e-3"}]}
    if case == "verdict":
        ours_claims["claims"][0]["verdict"] = "fail"
    ours_circuit = {**circuit, "pos_transmitter": [[0, 1]]} if case == "circuit" else circuit
    files = {
        "results/s/claims.json": (ours_claims, claims),
        "results/s/circuits/m/circuit.json": (ours_circuit, circuit),
    }
    failures, notes, tally = [], [], {}
    for path, (ours, theirs) in files.items():
        write_json(tmp_path / path, ours)
        entry = None if case == "no values" else {"sha256": "e" * 64, "data": theirs}
        failures += _compare_across(path, tmp_path, "s", entry, "e" * 64, tally, notes)
    if case == "verdict":
        assert failures == ["VERDICT  results/s/claims.json: 1 claims' verdicts differ (Q.a: 'fail', expected 'pass')"]
    elif case == "circuit":
        assert failures == [
            "FINDING  results/s/circuits/m/circuit.json differs from the expected: pos_transmitter: lengths 1 != 0"
        ]
    elif case == "no values":
        assert len(failures) == 2 and all("no expected values to compare with" in f for f in failures)
    else:
        assert failures == [] and tally["findings"] == 2
        moved = [n for n in notes if n.startswith("MOVED")]
        assert moved == [
            "MOVED    results/s/claims.json beyond rtol=0.001, atol=1e-06: claims[0].note: 'p = 2e-3' != 'p = 1e-3'"
        ]
    for suffix, kind in ((".safetensors", "binary"), (".pdf", "rendering")):
        assert _compare_across(f"results/s/x{suffix}", tmp_path, "s", None, "f" * 64, tally, notes) == []
        assert tally[kind] == 1


def test_hashes_of_other_files_are_set_aside_only_across_arithmetic():
    ours, theirs = {"data_sha256": "a" * 64, "x": 1.0}, {"data_sha256": "b" * 64, "x": 1.0}
    assert diff_values(ours, theirs, 0, 0) == f"data_sha256: {'a' * 64!r} != {'b' * 64!r}"
    assert diff_values(ours, theirs, 0, 0, hashes=False) is None
    assert diff_values({"note": "a", "x": 1.0}, {"note": "b", "x": 1.0}, 1, 1, hashes=False) == "note: 'a' != 'b'"


def test_portable_paths(tmp_path: Path):
    assert portable(f"{REPO}/models/x") == "{repo}/models/x"
    assert portable(str(tmp_path / "results" / "a.json"), workdir=tmp_path) == "results/a.json"
    assert portable({"p": [str(REPO)], "n": 1, "t": (1, "/etc/x")}) == {"p": ["{repo}"], "n": 1, "t": [1, "/etc/x"]}


@pytest.mark.parametrize("outcome", ["ok", "fail", "no output", "record=False"])
def test_a_job_is_recorded_only_when_its_block_succeeds(tmp_path: Path, monkeypatch, outcome: str):
    monkeypatch.chdir(tmp_path)
    out = Path("results") / STUDY / "out.txt"
    raises = pytest.raises(RuntimeError) if outcome == "fail" else nullcontext()  # the error propagates
    with raises, recorded(job("r", [], [str(out)], {}), seed=1, threads=1, record=outcome != "record=False"):
        if outcome != "no output":
            write_json(out, {})
        if outcome == "fail":
            raise RuntimeError("the job failed after writing its output")
    record = Path("results") / STUDY / ".provenance" / "r.json"
    assert record.is_file() == (outcome == "ok")
    if outcome == "ok":
        assert list(json.loads(record.read_text())["outputs"]) == [str(out)]


def test_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path):
    target = tmp_path / "out.json"
    write_json(target, {"old": True})
    with pytest.raises(KeyboardInterrupt), atomic_write(target) as fh:
        fh.write('{"new": ')
        raise KeyboardInterrupt  # as if the job were stopped half-way
    assert json.loads(target.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    (tmp_path / ".out.json.k1ll3d.tmp").write_text('{"half": ')  # what a SIGKILLed attempt leaves
    with atomic_write(target) as fh:
        fh.write("{}\n")
    assert target.read_text() == "{}\n" and oct(target.stat().st_mode & 0o777) != "0o600"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]  # the next attempt removed it


def test_interrupted_directory_output_leaves_nothing(tmp_path: Path):
    target = tmp_path / "ckpt"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / ".ckpt.k1ll3d.tmp").mkdir()  # a SIGKILLed attempt's directory
    target.mkdir()  # Snakemake may create the output directory before the job
    with atomic_dir(target) as tmp:
        (tmp / "model.safetensors").write_bytes(b"whole")
    assert [p.name for p in target.iterdir()] == ["model.safetensors"] and len(list(tmp_path.iterdir())) == 1


def test_saved_checkpoints_do_not_depend_on_how_the_base_was_loaded(tmp_path: Path):
    """HF_HUB_OFFLINE makes transformers record local_files_only in tokenizer_config.json: not in ours."""
    from transformers import PreTrainedTokenizerFast

    from entity_tracking.organisms import save_checkpoint
    from entity_tracking.toy import build_model

    base = REPO / "models" / "organisms" / "base"
    saved = []
    for offline in (True, False):
        tok = PreTrainedTokenizerFast.from_pretrained(base, local_files_only=offline)
        out = tmp_path / str(offline)
        save_checkpoint(build_model(tok, layers=1, hidden=16, heads=2, kv_heads=2, intermediate=32), tok, out, {})
        saved.append((out / "tokenizer_config.json").read_bytes())
    assert saved[0] == saved[1] and b"local_files_only" not in saved[0]
