"""Verify a study's results: the files against their manifest, the manifest against the expected one.

    python -m entity_tracking.verify                          # default study, in the current directory
    python -m entity_tracking.verify --study paper --reference authors/ --rtol 1e-3 --atol 1e-5
    python -m entity_tracking.verify --update-expected        # accept the current results as expected

Checks, each failure naming the file or job:

1. every file of the manifest (outputs and source files such as the shipped base model) exists
   and has the recorded sha256;
2. against the expected manifest (default ``results/expected/<study>-manifest.json`` of this
   repository, when it exists): the same configuration, the same jobs with the same parameters,
   seeds and inputs, and the same files with the same sha256. The code version and environment
   are reported, not compared.

GPU runs are not byte-stable. With ``--reference DIR`` (a results tree whose files match the
expected manifest, e.g. the authors' ``results/`` and ``figures/``) and a tolerance, a file whose
hash differs passes when its numbers are within ``|a - b| <= atol + rtol * |b|`` and everything
else in it (keys, strings, shapes, dtypes) is equal: JSON, JSONL, CSV and safetensors files.
Renderings (PDF, PNG, HTML, Markdown) that differ are then listed as unchecked, since the numbers
they are drawn from are checked. Exit status 0 when everything matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from entity_tracking.io import sha256_file
from entity_tracking.layout import expected_manifest, result, results_dir
from entity_tracking.provenance import COMPARED_JOB_FIELDS, REPO, resolve

NUMERIC_SUFFIXES = (".json", ".jsonl", ".csv", ".safetensors")
RENDERINGS = (".pdf", ".png", ".html", ".md", ".txt")
IGNORED_KEYS = frozenset({"device"})  # model cards say where the model ran; not a result


def expected_path(study: str) -> Path:
    return REPO / expected_manifest(study)


def load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_files(manifest: dict[str, Any], root: Path) -> list[str]:
    """Every output and source file of the manifest against its recorded sha256."""
    problems = []
    for path, digest in sorted({**manifest["files"], **manifest["sources"]}.items()):
        file = resolve(path, root)
        if not file.is_file():
            problems.append(f"MISSING  {path}")
        elif sha256_file(file) != digest:
            problems.append(f"CHANGED  {path} (sha256 differs from the manifest)")
    return problems


def diff_values(a: Any, b: Any, rtol: float, atol: float, where: str = "") -> str | None:
    """The first difference between two JSON-like values (numbers within tolerance are equal), or None."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        return None if a == b else f"{where or 'value'}: {a!r} != {b!r}"
    if isinstance(a, int | float) and isinstance(b, int | float):
        if a == b or (math.isnan(a) and math.isnan(b)):  # equal infinities too
            return None
        return None if abs(a - b) <= atol + rtol * abs(b) else f"{where or 'value'}: {a!r} != {b!r}"
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return f"{where or 'object'}: keys {sorted(set(a) ^ set(b))} differ"
        for k in sorted(a):
            if k not in IGNORED_KEYS and (d := diff_values(a[k], b[k], rtol, atol, f"{where}.{k}" if where else k)):
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where or 'list'}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if d := diff_values(x, y, rtol, atol, f"{where}[{i}]"):
                return d
        return None
    return None if a == b else f"{where or 'value'}: {a!r} != {b!r}"


def _csv_cells(path: Path) -> list[list[Any]]:
    def cell(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    with path.open(encoding="utf-8", newline="") as fh:
        return [[cell(c) for c in row] for row in csv.reader(fh)]


def _tensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    return {"metadata": meta, "tensors": tensors}


def compare_numeric(ours: Path, theirs: Path, rtol: float, atol: float) -> str | None:
    """None when the two files hold the same data within tolerance, else the first difference."""
    suffix = ours.suffix
    if suffix == ".json":
        return diff_values(load(ours), load(theirs), rtol, atol)
    if suffix == ".jsonl":
        a = [json.loads(line) for line in ours.read_text(encoding="utf-8").splitlines()]
        b = [json.loads(line) for line in theirs.read_text(encoding="utf-8").splitlines()]
        return diff_values(a, b, rtol, atol, "line")
    if suffix == ".csv":
        return diff_values(_csv_cells(ours), _csv_cells(theirs), rtol, atol, "row")
    if suffix == ".safetensors":
        import torch

        a, b = _tensors(ours), _tensors(theirs)
        if a["metadata"] != b["metadata"] or set(a["tensors"]) != set(b["tensors"]):
            return "metadata or tensor names differ"
        for name in sorted(a["tensors"]):
            x, y = a["tensors"][name], b["tensors"][name]
            if x.shape != y.shape or x.dtype != y.dtype:
                return f"{name}: shape or dtype differs"
            if not torch.allclose(x.double(), y.double(), rtol=rtol, atol=atol, equal_nan=True):
                return f"{name}: max |difference| {(x.double() - y.double()).abs().max().item():.3g}"
        return None
    return "not a numeric file"


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: obj}


def _changed_keys(a: Any, b: Any) -> list[str]:
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<absent>") != fb.get(k, "<absent>"))


def compare_expected(
    manifest: dict[str, Any],
    expected: dict[str, Any],
    root: Path,
    reference: Path | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> tuple[list[str], list[str]]:
    """``(failures, notes)`` of a manifest against the expected one."""
    failures: list[str] = []
    notes: list[str] = []
    if manifest.get("format") != expected.get("format"):
        return [
            f"FORMAT   the expected manifest has format {expected.get('format')}, this run {manifest.get('format')}: "
            "they come from different versions of the code. Fix: verify against a manifest of this version "
            "(python -m entity_tracking.verify --update-expected after a fresh run makes one)."
        ], []
    if manifest["study"] != expected["study"]:
        failures.append(f"STUDY    {manifest['study']!r} != expected {expected['study']!r}")
    if keys := _changed_keys(manifest["config"], expected["config"]):
        failures.append(f"CONFIG   differs from the expected configuration at: {', '.join(keys[:20])}")
    for key in sorted(set(manifest["jobs"]) | set(expected["jobs"])):
        ours, theirs = manifest["jobs"].get(key), expected["jobs"].get(key)
        if ours is None or theirs is None:
            failures.append(f"JOB      {key} is {'missing from this run' if ours is None else 'not expected'}")
            continue
        for field in COMPARED_JOB_FIELDS:  # files by name here; their bytes are compared below
            a, b = ours[field], theirs[field]
            if a != b:
                if isinstance(a, dict) and isinstance(b, dict):
                    detail = ", ".join(_changed_keys(a, b))
                else:
                    detail = "other files" if field in ("inputs", "outputs") else f"{a!r}, expected {b!r}"
                failures.append(f"PARAMS   {key}: {field} differs from the expected ({detail})")
    ours_files, theirs_files = manifest["files"], expected["files"]
    for path in sorted(set(ours_files) | set(theirs_files)):
        if path not in ours_files:
            failures.append(f"MISSING  {path} (expected, not made by this run)")
        elif path not in theirs_files:
            failures.append(f"EXTRA    {path} (made by this run, not expected)")
        elif ours_files[path] != theirs_files[path]:
            failures.extend(_compare_with_reference(path, root, reference, theirs_files[path], rtol, atol, notes))
    for path in sorted(set(manifest["sources"]) & set(expected["sources"])):
        if manifest["sources"][path] != expected["sources"][path]:
            failures.append(f"SOURCE   {path} differs from the expected source file")
    if failures and manifest["code"]["sources_sha256"] != expected["code"]["sources_sha256"]:
        notes.append(  # a likely reason for the differences; when everything matches, code edits do not matter
            "note: this run's code differs from the code that made the expected manifest "
            f"(git {expected['code'].get('git_commit')}): if the change was meant to change these results, "
            "accept them with --update-expected"
        )
    return failures, notes


def _compare_with_reference(
    path: str, root: Path, reference: Path | None, digest: str, rtol: float, atol: float, notes: list[str]
) -> list[str]:
    """A file whose sha256 differs from the expected: a failure, unless it is within tolerance of the reference."""
    if reference is None or (rtol == 0 and atol == 0):
        return [f"DIFFERS  {path} (sha256 differs from the expected manifest)"]
    theirs = resolve(path, reference)
    if not theirs.is_file() or sha256_file(theirs) != digest:
        return [f"DIFFERS  {path} (and the reference tree has no file with the expected sha256 to compare with)"]
    ours = resolve(path, root)
    if ours.suffix in NUMERIC_SUFFIXES:
        problem = compare_numeric(ours, theirs, rtol, atol)
        if problem is None:
            notes.append(f"within tolerance: {path}")
            return []
        return [f"DIFFERS  {path} beyond rtol={rtol:g}, atol={atol:g}: {problem}"]
    if ours.suffix in RENDERINGS:
        notes.append(f"unchecked rendering (its numbers are checked): {path}")
        return []
    return [f"DIFFERS  {path} (not a numeric file; sha256 differs from the expected manifest)"]


def verify(
    root: Path,
    study: str,
    manifest_path: Path | None = None,
    expected: Path | None = None,
    reference: Path | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> tuple[list[str], list[str]]:
    """``(failures, notes)`` of the results under ``root``."""
    manifest_path = manifest_path or root / result(results_dir(study), "manifest")
    if not manifest_path.is_file():
        return [f"MISSING  {manifest_path}: run snakemake first (the rule manifest writes it)"], []
    manifest = load(manifest_path)
    failures = check_files(manifest, root)
    notes = [f"checked {len(manifest['files'])} files of {len(manifest['jobs'])} jobs against {manifest_path}"]
    if expected is not None:
        more, extra_notes = compare_expected(manifest, load(expected), root, reference, rtol, atol)
        failures += more
        notes += [f"compared with the expected manifest {expected}", *extra_notes]
    return failures, notes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="default")
    ap.add_argument("--root", type=Path, default=Path("."), help="the run's working directory (results/, figures/)")
    ap.add_argument("--manifest", type=Path, help="default: ROOT/results/STUDY/manifest.json")
    ap.add_argument(
        "--expected", help="expected manifest; default results/expected/STUDY-manifest.json; 'none' to skip"
    )
    ap.add_argument("--reference", type=Path, help="a results tree matching the expected manifest, for tolerances")
    ap.add_argument("--rtol", type=float, default=0.0)
    ap.add_argument("--atol", type=float, default=0.0)
    ap.add_argument("--update-expected", action="store_true", help="copy the checked manifest to the expected one")
    args = ap.parse_args(argv)

    expected: Path | None = None
    if args.expected != "none":
        expected = Path(args.expected) if args.expected else expected_path(args.study)
        if not expected.is_file():
            if args.expected:
                print(f"FAIL: the expected manifest {expected} does not exist", file=sys.stderr)
                return 1
            print(f"note: no expected manifest for study {args.study!r} ({expected}); checking the run alone")
            expected = None
    if args.update_expected:
        expected = None
    failures, notes = verify(args.root, args.study, args.manifest, expected, args.reference, args.rtol, args.atol)
    for line in notes:
        print(line)
    for line in failures:
        print(line, file=sys.stderr)
    if failures:
        print(f"FAIL: {len(failures)} problem(s)", file=sys.stderr)
        return 1
    if args.update_expected:
        target = Path(args.expected) if args.expected not in (None, "none") else expected_path(args.study)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.manifest or args.root / result(results_dir(args.study), "manifest"), target)
        print(f"updated {target}")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
