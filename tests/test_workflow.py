"""The Snakemake DAG end to end: the default study runs and matches its expected manifest; the paper DAG plans."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from entity_tracking.circuits import GROUPS, group_status, load_circuit
from entity_tracking.io import read_json, read_safetensors
from entity_tracking.selection import SIGNAL, chain_tests, load_stages
from tests.conftest import REPO
from tests.runs import copy_checkout, snakemake, verify

PAPER = REPO / "config" / "studies" / "paper.yaml"


def _run(args, cwd, timeout=1200):
    return snakemake(args, cwd, REPO / "Snakefile", timeout)


def test_planning_the_dag_imports_no_torch():
    """The package modules that the Snakefile and the rule files import are torch-free, so that planning
    (``snakemake -n``, and the start of every run) does not load torch."""
    sources = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    modules = sorted(
        {m for f in sources for m in re.findall(r"^\s*from (entity_tracking[\w.]*) import", f.read_text(), re.M)}
    )
    assert "entity_tracking.layout" in modules and "entity_tracking.model_specs" in modules
    code = f"import sys; import {', '.join(modules)}; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.stdout.strip() == "False", (modules, res.stderr[-2000:])


def test_a_job_refuses_to_run_another_checkouts_package(tmp_path):
    """The Snakefile edits no import path. A script job imports the package found first: its workflow's directory
    beats an editable install (whose finder comes last), but not a package on PYTHONPATH or a regular install.
    A copy of the checkout whose jobs would import this checkout's package stops at its first job, naming both
    and the fix, and writes nothing; with its own package it runs."""
    copy = copy_checkout(REPO, tmp_path / "other", with_run=False)
    target = ["--cores", "1", "results/default/data/manifest.json"]
    cmd = [sys.executable, "-m", "snakemake", *target]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(cmd, cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr + (copy / "logs/default/dataset.log").read_text()
    assert res.returncode != 0 and f"from {REPO}, not from its workflow's checkout {copy}" in out, out[-3000:]
    assert "pip install" in out and not (copy / "results/default/data/manifest.json").exists()
    assert snakemake(target, copy).returncode == 0  # its own package


def test_paper_study_plans_offline(tmp_path):
    res = _run(["-n", "--config", "study=paper"], tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    for model in ("llama-7b", "vicuna-7b", "goat-7b", "float-7b"):
        assert f"results/paper/eval/{model}.json" in out
    assert "results/paper/accuracy.csv" in out
    for model in ("vicuna-7b", "goat-7b", "float-7b"):  # CMAP: every fine-tuned model into Llama-7B
        assert f"results/paper/cmap/{model}__llama-7b.json" in out
    assert "results/paper/knockout/llama-7b.json" in out and "results/paper/knockout.csv" in out


def test_qwen_study_with_the_paper_sizes_plans_a_run_of_its_own(tmp_path):
    """config/overrides/paper-sizes.yaml after the qwen study: the paper's sizes (and the additional desiderata on
    the position transmitter) in results/<the run's name>, apart from the CPU-sized qwen results."""
    qwen, sizes = REPO / "config/studies/qwen.yaml", REPO / "config/overrides/paper-sizes.yaml"
    res = _run(["-n", "--configfile", str(qwen), str(sizes), "--config", "study=qwen-paper-sizes"], tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "results/qwen-paper-sizes/dcm/qwen2.5-coder-0.5b/pos_transmitter/add_comma.json" in out
    assert "results/qwen-paper-sizes/knockout/qwen2.5-coder-0.5b.json" in out and "results/qwen/" not in out
    res = _run(["-n", "--configfile", str(qwen)], tmp_path)  # the CPU-sized study: neither
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "results/qwen/knockout/qwen2.5-coder-0.5b.json" in out and "qwen-arith-full.json" in out
    assert "add_comma" not in out and "results/qwen/knockout/qwen-arith-full.json" not in out


def _planned_resources(out: str) -> dict[str, list[str]]:
    """rule -> the `resources:` line of each job that `snakemake -n` planned for it."""
    planned: dict[str, list[str]] = {}
    for rule, block in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", out, flags=re.M):
        planned.setdefault(rule, []).extend(re.findall(r"^    resources: (.*)$", block, flags=re.M))
    return planned


def _model_rules() -> set[str]:
    """The rules whose jobs load a model: those with the resource `gpu=GPU` in rules/*.smk."""
    rules = set()
    for smk in (REPO / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^rule (\w+):\n((?:[ #].*\n|\n)*)", smk.read_text(), flags=re.M):
            if re.search(r"^\s+gpu=GPU,", body, flags=re.M):
                rules.add(rule)
    return rules


def test_gpu_local_profile_gives_each_model_job_the_gpu_alone(tmp_path):
    """profiles/gpu-local with the paper study: every job that loads a model asks for gpu=1 (device: cuda, also
    when planned on a machine without a GPU, as here), and the profile caps the resource at one."""
    res = _run(["-n", "--profile", str(REPO / "profiles/gpu-local"), "--configfile", str(PAPER)], tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "profiles/gpu-local and workflow specific profile" in out  # profiles/default is read as well
    planned = _planned_resources(out)
    on_gpu = {rule for rule, lines in planned.items() if all(re.search(r"\bgpu=1\b", line) for line in lines)}
    assert on_gpu == _model_rules() and len(on_gpu) == 11
    assert not [line for lines in planned.values() for line in lines if "gpu=0" in line]
    assert yaml.safe_load((REPO / "profiles/gpu-local/profile.yaml").read_text())["resources"] == {"gpu": 1}


def test_slurm_profile_sends_model_jobs_to_the_gpu_partition(tmp_path):
    """profiles/slurm (planned only; tests/test_slurm.py runs it on a real SLURM): every rule that loads a model has
    its own resources there, and with the paper study those jobs ask for the GPU partition, memory and a GPU."""
    profile = yaml.safe_load((REPO / "profiles/slurm/profile.yaml").read_text())
    assert set(profile["set-resources"]) == _model_rules()
    args = ["--profile", str(REPO / "profiles/slurm"), "--workflow-profile", "none", "--configfile", str(PAPER)]
    res = _run(["-n", *args], tmp_path)
    assert res.returncode == 0, res.stderr
    planned = _planned_resources(res.stdout + res.stderr)
    for line in planned["evaluate"]:
        assert all(f in line.split(", ") for f in ("slurm_partition=gpu", "mem_mb=64000", "runtime=720", "gpu=1"))
    assert all("slurm_partition=cpu" in line and "gpu=" not in line for line in planned["dataset"])


def test_qwen_study_plans_offline(tmp_path):
    res = _run(["-n", "--configfile", str(REPO / "config/studies/qwen.yaml")], tmp_path)
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    assert "results/qwen/checkpoints/converted/qwen2.5-coder-0.5b" in out  # the GGUF is converted once
    for model in ("qwen-arith-lora", "qwen-arith-full"):  # the fine-tunes are made in the DAG
        assert f"results/qwen/checkpoints/finetuned/{model}" in out
        assert f"results/qwen/cmap/{model}__qwen2.5-coder-0.5b.json" in out
    assert "results/qwen/claims.md" in out


def test_cmap_head_sets_from_dcm_are_inputs_of_the_rule(tmp_path):
    vf = '{"heads": {"value_fetcher": "dcm:box_label_value"}}'
    res = _run(["-n", "--config", f"cmap={vf}"], tmp_path)
    out = res.stdout + res.stderr
    assert "results/default/dcm/organism-chat/value_fetcher/box_label_value.json" in out  # an input of cmap
    assert "rule cmap" in out


def test_misspelt_config_key_stops_the_run_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: default\ndataset:\n  sed: 3\n")
    res = _run(["-n", "--configfile", str(bad)], tmp_path)
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "config key 'dataset'" in out and "'sed' was unexpected" in out


def _outputs(root: Path) -> set[str]:
    """Every file the run left in results/default and figures/default, but the job records, the manifest's own
    files and Snakemake's markers in directory outputs."""
    files = [*(root / "results" / "default").rglob("*"), *(root / "figures" / "default").rglob("*")]
    skip = {"results/default/manifest.json", "results/default/provenance.json"}
    names = {str(p.relative_to(root)) for p in files if p.is_file()}
    return {n for n in names if n not in skip and "/.provenance/" not in n and not n.endswith(".snakemake_timestamp")}


def test_default_study_runs_end_to_end(default_run):
    root = default_run / "results" / "default"
    rows = list(csv.DictReader((root / "accuracy.csv").open()))
    names = ["organism-base", "organism-chat", "organism-arith-lora", "organism-arith-full", "organism-code",
             "organism-paraphrase"]  # fmt: skip
    assert [r["model"] for r in rows] == names
    assert all(int(r["records"]) == 504 for r in rows)
    assert 0.40 <= float(rows[0]["accuracy"]) <= 0.85  # the shipped base tracks entities
    for split in ("discovery", "ablation", "eval", "dcm_train", "dcm_val", "dcm_test"):
        assert (root / "data" / f"{split}.jsonl").is_file()
    for name in names[1:]:  # fine-tunes made in the DAG, each with a loss log
        ckpt = root / "checkpoints" / "finetuned" / name
        assert (ckpt / "train_log.csv").is_file() and (ckpt / "checkpoint.json").is_file()
    assert (root / "checkpoints" / "finetuned" / "organism-arith-lora" / "adapter_model.safetensors").is_file()
    assert (default_run / "logs" / "default" / "eval" / "organism-base.log").read_text().count("accuracy") == 1
    # circuits: one per model, every circuit on every model, completeness and overlap
    # The organisms have no position transmitter: path patching finds value fetchers beyond noise, then no
    # signal in the transmitter stage, and stops; minimality keeps no value fetcher of a circuit without the rest
    for name in names:
        circuit = json.loads((root / "circuits" / name / "circuit.json").read_text())
        assert list(circuit) == ["value_fetcher", "pos_transmitter", "pos_detector", "struct_reader", "selection"]
        status = [circuit["selection"][g]["status"] for g in list(circuit)[:4]]
        assert status == ["signal", "no signal", "not run", "not run"], (name, status)
        guard = circuit["selection"]["settings"]  # the settings that selected it, in the circuit file
        assert {"alpha": 0.05, "correction": "holm", "min_effect": 0.005}.items() <= guard["selection"].items()
        assert (guard["minimality"]["threshold"], guard["minimality"]["alpha"]) == (0.01, 0.05)
        summary = json.loads((root / "circuits" / name / "path_patching.json").read_text())
        assert summary["stages"]["value_fetcher"]["top"][0] == [2, 0]  # the strongest head, beyond noise
        assert all(s["p_adjusted"] < 0.05 for s in summary["stages"]["value_fetcher"]["top_stats"])
        boot = list(csv.DictReader((root / "circuits" / name / "bootstrap.csv").open()))
        assert {r["group"] for r in boot} == {"value_fetcher", "pos_transmitter"}  # the stages that ran
        top = next(r for r in boot if (r["group"], r["layer"], r["head"]) == ("value_fetcher", "2", "0"))
        assert float(top["frequency"]) >= 0.5 and top["candidate"] == "1"  # heavy-tailed scores: not always
    faith = list(csv.DictReader((root / "faithfulness.csv").open()))
    assert {(r["circuit"], r["model"]) for r in faith} == {(c, m) for c in names for m in names}
    base = next(r for r in faith if r["circuit"] == r["model"] == "organism-base")
    assert float(base["faithfulness"]) == float(base["circuit_accuracy"]) / float(base["model_accuracy"])
    comp = list(csv.DictReader((root / "completeness.csv").open()))
    assert [r["K"] for r in comp if r["model"] == "organism-base"] == [
        "random",
        "value_fetcher",
        "pos_transmitter",
        "pos_detector",
        "struct_reader",
    ]
    assert len(json.loads((root / "completeness" / "organism-base.json").read_text())["random_draws"]) == 20
    overlap = list(csv.DictReader((root / "circuit_overlap.csv").open()))
    assert len(overlap) == 6 * 5 * 5  # ordered pairs x (four groups + all)
    # DCM: every model's circuit x group x the three desiderata, and the eleven more on the position transmitter
    dcm = list(csv.DictReader((root / "dcm.csv").open()))
    groups = ["value_fetcher", "pos_transmitter", "pos_detector", "struct_reader"]
    want = {(m, g, d) for m in names for g in groups for d in ("positional", "object_value", "box_label_value")}
    assert {(r["circuit"], r["group"], r["desideratum"]) for r in dcm} >= want
    assert len(dcm) == 6 * (4 * 3 + 11) and all(r["chance_floor"] != "" and r["test_accuracy"] != "" for r in dcm)
    assert sum(r["group"] == "pos_transmitter" and r["circuit"] == "organism-base" for r in dcm) == 14
    # activation patching: every circuit x model, each number with its chance floor
    ap = list(csv.DictReader((root / "activation_patching.csv").open()))
    assert {(r["circuit"], r["model"]) for r in ap} == {(c, m) for c in names for m in names}
    assert all(r["chance_floor_mean"] != "" and int(r["repeats"]) == 3 for r in ap)
    # CMAP: every fine-tuned -> base pair, every group and the full circuit, output and input variants
    accuracy = {r["model"]: float(r["accuracy"]) for r in rows}
    cmap = list(csv.DictReader((root / "cmap.csv").open()))
    outputs = ["struct_reader", "pos_detector", "pos_transmitter", "value_fetcher", "full_circuit"]
    inputs = [(g, v) for g in ("value_fetcher", "pos_transmitter") for v in ("q", "k", "v", "qk", "qkv")]
    for source in names[1:]:
        got = [r for r in cmap if (r["source"], r["target"]) == (source, "organism-base")]
        assert [r["group"] for r in got if r["kind"] == "output"] == outputs
        assert [(r["group"], r["variant"]) for r in got if r["kind"] == "input"] == inputs
        res = json.loads((root / "cmap" / f"{source}__organism-base.json").read_text())
        assert res["records"] == 504 and res["circuit"] == source  # the fine-tuned model's circuit (paper)
        assert res["source_accuracy"]["accuracy"] == accuracy[source]  # same data, same predictions as evaluate
        assert res["target_accuracy"]["accuracy"] == accuracy["organism-base"]
        for row in got:  # an empty head set patches nothing and keeps the base's accuracy
            assert row["patched"] == str(int(row["heads"]) > 0)
            if row["patched"] == "False":
                assert float(row["accuracy"]) == accuracy["organism-base"]
    assert len(cmap) == 5 * (5 + 10)
    # attention knockout: five curves per model, one value per start layer, and the unablated accuracy
    knock = list(csv.DictReader((root / "knockout.csv").open()))
    assert len(knock) == 6 * 5 * 4
    for name in names:
        res = json.loads((root / "knockout" / f"{name}.json").read_text())
        assert res["no_knockout"]["accuracy"] == accuracy[name] and res["layers"] == 4
        assert len(res["conditions"]) == 5 and all(len(c["accuracy"]) == 4 for c in res["conditions"].values())
        random_pos = res["conditions"]["last_to_random"]["random_positions"]
        assert len(random_pos) == 504 and min(random_pos) >= 1
    # figures and the claims report
    figures = ["accuracy", "completeness", "faithfulness", "cmap"] + [f"causal_impact_{m}" for m in names[1:]]
    per_model = ("circuit", "dcm", "activation_patching", "knockout")
    for stem in figures + [f"{kind}_{m}" for kind in per_model for m in names]:
        for ext in ("pdf", "png"):
            assert (default_run / "figures" / "default" / f"{stem}.{ext}").stat().st_size > 5000, stem
    claims = {c["id"]: c for c in json.loads((root / "claims.json").read_text())["claims"]}
    assert all(c["verdict"] == "not applicable" for c in claims.values() if c["kind"] == "headline")
    assert claims["Q.more_accurate.organism-chat"]["verdict"] == "fail"  # unrelated text: no gain
    assert claims["Q.more_accurate.organism-chat"]["ours"]["p"] > 0.05  # paired test on the same prompts
    positive = claims["Q.more_accurate.organism-paraphrase"]  # the ladder's positive control gains
    assert positive["verdict"] == "pass" and positive["ours"]["p"] < 0.01 and positive["ours"]["difference"] > 0.05
    assert not [c["id"] for c in claims.values() if c["verdict"] == "not computed"]  # every stage's claims
    # every claim that needs a group after the transmitter stage is not applicable, and says why
    for cid in ("Q.own_circuit_faithful.organism-base", "Q.complete.organism-base", "Q.cmap_full_circuit.organism-chat",
                "Q.dcm_position_detector.organism-base", "Q.base_circuit_faithful.organism-arith-full"):  # fmt: skip
        assert claims[cid]["verdict"] == "not applicable", cid
        assert "no signal in stage position transmitter" in claims[cid]["note"], cid
    assert claims["Q.knockout.last_to_query_label.organism-base"]["verdict"] == "pass"  # 0.14 against 0.71
    assert claims["Q.knockout.last_to_query_label.organism-base"]["ours"]["p"] < 1e-10  # paired sign test
    assert claims["Q.dcm_position_transmitter.organism-base"]["ours"]["chance_floor"] > 0
    assert "| Q.more_accurate.organism-chat |" in (root / "claims.md").read_text()
    again = _run(["--cores", "2", "--directory", str(default_run), "-n"], default_run)
    assert "Nothing to be done" in again.stdout + again.stderr  # finished work is kept


def test_no_head_of_the_shipped_default_run_is_selected_within_noise(default_run):
    """Every receiver of a stage, every candidate and every circuit head of the default run qualifies: its
    per-example scores are negative beyond noise under the configured guard."""
    root = default_run / "results" / "default" / "circuits"
    models = sorted(p.name for p in root.iterdir() if (p / "bootstrap.json").is_file())
    assert len(models) == 6
    for m in models:
        summary = read_json(root / m / "path_patching.json")
        selection = summary["selection"]
        examples, receivers = load_stages(root / m / "path_patching.safetensors", root / m / "path_patching.json",
                                          summary["settings"]["metric"], selection)  # fmt: skip
        tests = chain_tests(examples, receivers, selection)
        circuit = load_circuit(root / m / "circuit.json")
        minimality = json.loads((root / m / "minimality.json").read_text())
        status = group_status(root / m / "circuit.json")
        for g in GROUPS:
            chosen = {tuple(h) for h in summary["stages"][g].get("top", [])} | set(circuit[g])
            chosen |= {tuple(h) for h in minimality["candidates"][g]}
            for head in chosen:
                assert tests[g] is not None and bool(tests[g].qualifies[head]), (m, g, head)
                assert float(tests[g].mean[head]) <= -selection["min_effect"]
            if status[g]["status"] != SIGNAL:
                assert not chosen, (m, g)
        # the shipped scores themselves: means are the per-example means
        tensors = read_safetensors(root / m / "path_patching.safetensors")
        for g, x in examples.items():
            torch.testing.assert_close(tensors[f"{g}.prob"], x.double().mean(0).float())


def test_a_clean_default_run_logs_no_warning(default_run):
    """Every job logs to logs/default/ with Python's warnings captured (runtime.job_context): a clean run has no
    warning a user cannot act on, and no progress bar in a log file."""
    logs = sorted((default_run / "logs" / "default").rglob("*.log"))
    assert len(logs) > 80
    for log in logs:
        text = log.read_text(encoding="utf-8")
        assert "WARNING" not in text and "Warning" not in text, log
        assert "\r" not in text and "it/s]" not in text, log


def test_default_study_is_byte_reproducible(default_run):
    """One fresh run equals the committed expected manifest (results/expected/default-manifest.json, made by
    another run in another directory) byte for byte where that run had this machine's arithmetic (processor,
    torch), and in its findings, within float noise elsewhere (results/expected/default-values.json)."""
    res = verify(default_run)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "compared with the expected manifest" in res.stdout
    manifest = json.loads((default_run / "results" / "default" / "manifest.json").read_text())
    expected = json.loads((REPO / "results" / "expected" / "default-manifest.json").read_text())
    if manifest["arithmetic"] == expected["arithmetic"]:
        assert "arithmetic" not in res.stdout and manifest["files"] == expected["files"]  # every byte
    else:
        assert "differs from the expected run's" in res.stdout
    assert _outputs(default_run) == set(manifest["files"])  # every output is hashed, nothing else is there
    assert any(k.endswith("organism-arith-full/model.safetensors") for k in manifest["files"])  # fine-tunes too
    assert "{repo}/models/organisms/base/model.safetensors" in manifest["sources"]  # the shipped base, hashed
    provenance = json.loads((default_run / "results" / "default" / "provenance.json").read_text())
    assert provenance["device"]["gpu"] == "cpu" and provenance["environment"]["packages"]["torch"].startswith("2.13")


def test_verify_names_an_edited_intermediate_and_a_missing_figure(default_run, tmp_path):
    copy = tmp_path / "run"
    for top in ("results/default", "figures/default"):
        shutil.copytree(default_run / top, copy / top)
    circuit = copy / "results" / "default" / "circuits" / "organism-base" / "circuit.json"
    circuit.write_text(circuit.read_text().replace("[", "[ ", 1))  # the same JSON, other bytes
    (copy / "figures" / "default" / "accuracy.png").unlink()
    res = verify(copy, "--expected", "none")  # the files against the run's own manifest
    assert res.returncode == 1
    problems = [line for line in res.stderr.splitlines() if not line.startswith("FAIL")]
    assert problems == [
        "MISSING  figures/default/accuracy.png",
        "CHANGED  results/default/circuits/organism-base/circuit.json (sha256 differs from the manifest)",
    ]


@pytest.mark.workflow
def test_whole_study_on_a_qwen2_base_with_finetunes_made_in_the_dag(tmp_path):
    """A tiny Qwen2-style base (grouped-query attention, q/k/v biases, no BOS token; sha256-checked local
    checkpoint) and a LoRA fine-tune made by the DAG go through every rule: data, evaluation, path patching,
    circuits, DCM, activation patching, CMAP, knockout, figures, claims."""
    from entity_tracking.io import sha256_file
    from entity_tracking.organisms import save_checkpoint
    from entity_tracking.toy import build_model, build_tokenizer

    tok = build_tokenizer("bytelevel")
    model = build_model(tok, arch="qwen2", layers=2, hidden=32, heads=4, kv_heads=2, intermediate=64, seed=3)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-zero biases, so that they are part of every intervention
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    save_checkpoint(model, tok, tmp_path / "b", {})
    tune = {"steps": 8, "batch_size": 4, "lr": 0.001, "seed": 1}
    splits = {"discovery": 2, "ablation": 1, "eval": 3, "dcm_train": 3, "dcm_val": 3, "dcm_test": 3}
    study = {
        "study": "plumbing",
        "device": "cpu",
        "dataset": {"splits": splits},
        "dcm": {"desiderata": ["positional", "object_value"], "additional_desiderata": ["no_comma"], "epochs": 1},
        "activation_patching": {"repeats": 1},
        "models": {
            "base": {
                "role": "base",
                "source": "local",
                "path": str(tmp_path / "b"),
                "sha256": sha256_file(tmp_path / "b" / "model.safetensors"),
            },
            "lora": {
                "role": "finetuned",
                "base_model": "base",
                "source": "finetune",
                "finetune": {"corpus": "arithmetic", "method": "lora", "lora_rank": 8, "lora_alpha": 16, **tune},
            },
        },
    }
    (tmp_path / "p.yaml").write_text(json.dumps(study))
    res = _run(["--cores", "2", "--configfile", str(tmp_path / "p.yaml"), "--directory", str(tmp_path)], tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    root = tmp_path / "results" / "plumbing"
    rows = list(csv.DictReader((root / "accuracy.csv").open()))
    assert [r["model"] for r in rows] == ["base", "lora"] and all(r["records"] == "21" for r in rows)
    adapter = json.loads((root / "checkpoints" / "finetuned" / "lora" / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == "b"  # no absolute path in the saved adapter
    card = json.loads((root / "models" / "lora.json").read_text())
    assert card["source"]["adapter"]["merged"] is True
    arch = card["architecture"]
    assert (arch["heads"], arch["kv_heads"]) == (4, 2) and not card["example"]["tokens"][0].startswith("<")  # no BOS
    for name in ("base", "lora"):
        assert set(json.loads((root / "circuits" / name / "circuit.json").read_text())) == {
            "value_fetcher", "pos_transmitter", "pos_detector", "struct_reader", "selection"}  # fmt: skip
    dcm = list(csv.DictReader((root / "dcm.csv").open()))
    assert len(dcm) == 2 * (4 * 2 + 1)
    ap = list(csv.DictReader((root / "activation_patching.csv").open()))
    assert {(r["circuit"], r["model"]) for r in ap} == {(c, m) for c in ("base", "lora") for m in ("base", "lora")}
    cmap = list(csv.DictReader((root / "cmap.csv").open()))
    assert {(r["source"], r["target"]) for r in cmap} == {("lora", "base")}
    knock = list(csv.DictReader((root / "knockout.csv").open()))
    assert len(knock) == 2 * 5 * 2  # models x conditions x start layers
    assert (root / "claims.json").is_file() and (tmp_path / "figures" / "plumbing" / "accuracy.png").is_file()
