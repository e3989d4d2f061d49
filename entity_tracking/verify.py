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

Floating-point results are byte-identical only between runs with the same arithmetic (processor,
the instruction set torch's CPU kernels use, torch, GPU: the manifest's ``arithmetic``). When this
run's differs from the expected run's, the last-bit differences travel through training and
selection, and can flip a borderline prediction. Then the findings must still be the expected ones:
every claim's verdict and every circuit (``FINDINGS``), compared with the expected run's values
(``results/expected/<study>-values.json``); a failure otherwise. Every other JSON or CSV file whose
sha256 differs is compared by value within ``CROSS_RTOL`` and ``CROSS_ATOL`` (its hashes of other
files aside), and one that moved more is listed with its first difference (``MOVED``), not failed.
Binary intermediates (safetensors: weights, mean activations, path-patching scores) are checked
through the results computed from them, renderings through the numbers they are drawn from.

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
import fnmatch
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

from entity_tracking.io import sha256_file
from entity_tracking.layout import expected_manifest, expected_values, relative, result, results_dir
from entity_tracking.provenance import COMPARED_JOB_FIELDS, REPO, resolve

NUMERIC_SUFFIXES = (".json", ".jsonl", ".csv", ".safetensors")
RENDERINGS = (".pdf", ".png", ".html", ".md", ".txt")
IGNORED_KEYS = frozenset({"device"})  # model cards say where the model ran; not a result
VALUE_SUFFIXES = (".json", ".csv")  # the files whose numbers the expected values hold
# Across arithmetic: the tolerance of float noise (measured: docs/reproducibility.md), and the files whose content
# is the study's findings, which must not move at all (results/<study>/ relative; the claims by id and verdict).
CROSS_RTOL, CROSS_ATOL = 1e-3, 1e-6
FINDINGS = (relative("claims_json"), relative("circuit", circuit="*"))


def expected_path(study: str) -> Path:
    return REPO / expected_manifest(study)


def values_path(study: str) -> Path:
    return REPO / expected_values(study)


def file_values(path: Path) -> Any:
    """A JSON file's content, or a CSV file's rows of cells."""
    if path.suffix == ".json":
        return load(path)
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


def write_values(manifest: dict[str, Any], root: Path, out: Path) -> int:
    """The content of every JSON and CSV file of the manifest, with its sha256 (one file a line); their count."""
    files = {p: d for p, d in manifest["files"].items() if Path(p).suffix in VALUE_SUFFIXES}
    lines = [
        json.dumps(path) + ": " + json.dumps({"sha256": digest, "data": file_values(resolve(path, root))})
        for path, digest in sorted(files.items())
    ]
    head = json.dumps({"format": 1, "study": manifest["study"], "arithmetic": manifest.get("arithmetic")})
    out.write_text(head[:-1] + ', "files": {\n' + ",\n".join(lines) + "\n}}\n", encoding="utf-8")
    return len(files)


def _is_hash(key: str) -> bool:
    return key == "sha256" or key.endswith("_sha256")


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


def diff_values(a: Any, b: Any, rtol: float, atol: float, where: str = "", hashes: bool = True) -> str | None:
    """The first difference between two JSON-like values (numbers within tolerance are equal), or None;
    without ``hashes``, the values of keys that hold sha256 sums of other files are not compared."""
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
            if k in IGNORED_KEYS or (not hashes and _is_hash(k)):
                continue
            if d := diff_values(a[k], b[k], rtol, atol, f"{where}.{k}" if where else k, hashes):
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where or 'list'}: lengths {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if d := diff_values(x, y, rtol, atol, f"{where}[{i}]", hashes):
                return d
        return None
    return None if a == b else f"{where or 'value'}: {a!r} != {b!r}"


def _cells(rows: list[list[str]]) -> list[list[Any]]:
    def cell(text: str) -> Any:
        try:
            return float(text)
        except ValueError:
            return text

    return [[cell(c) for c in row] for row in rows]


def _tensors(path: Path) -> dict[str, Any]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 (safe_open is not a dict)
    return {"metadata": meta, "tensors": tensors}


def diff_content(suffix: str, ours: Any, theirs: Any, rtol: float, atol: float, hashes: bool = True) -> str | None:
    """The first difference between the contents (:func:`file_values`) of two JSON or two CSV files, or None."""
    if suffix == ".csv":
        return diff_values(_cells(ours), _cells(theirs), rtol, atol, "row", hashes)
    return diff_values(ours, theirs, rtol, atol, "", hashes)


def compare_numeric(ours: Path, theirs: Path, rtol: float, atol: float) -> str | None:
    """None when the two files hold the same data within tolerance, else the first difference."""
    suffix = ours.suffix
    if suffix in VALUE_SUFFIXES:
        return diff_content(suffix, file_values(ours), file_values(theirs), rtol, atol)
    if suffix == ".jsonl":
        a = [json.loads(line) for line in ours.read_text(encoding="utf-8").splitlines()]
        b = [json.loads(line) for line in theirs.read_text(encoding="utf-8").splitlines()]
        return diff_values(a, b, rtol, atol, "line")
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
    values: dict[str, Any] | None = None,
) -> tuple[list[str], list[str]]:
    """``(failures, notes)`` of a manifest against the expected one; ``values``: the expected run's numbers
    (:func:`write_values`), compared when this run's arithmetic differs from the expected run's."""
    failures: list[str] = []
    notes: list[str] = []
    ours_arith, theirs_arith = manifest.get("arithmetic"), expected.get("arithmetic")
    across = values is not None and ours_arith != theirs_arith and not (reference and (rtol or atol))
    tally: dict[str, int] = {}
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
            if across:
                entry = (values or {}).get(path)
                failures.extend(_compare_across(path, root, manifest["study"], entry, theirs_files[path], tally, notes))
            else:
                failures.extend(_compare_with_reference(path, root, reference, theirs_files[path], rtol, atol, notes))
        else:
            tally["identical"] = tally.get("identical", 0) + 1
    for path in sorted(set(manifest["sources"]) & set(expected["sources"])):
        if manifest["sources"][path] != expected["sources"][path]:
            failures.append(f"SOURCE   {path} differs from the expected source file")
    if across:
        notes.append(
            f"this run's arithmetic {_arith(ours_arith)} differs from the expected run's {_arith(theirs_arith)}, so "
            f"float results may differ in their last bits. {tally.get('identical', 0)} files are byte-identical; of "
            f"the others, {tally.get('findings', 0)} hold the expected findings (claims' verdicts, circuits), "
            f"{tally.get('within', 0)} JSON/CSV files are equal within rtol={CROSS_RTOL:g}, atol={CROSS_ATOL:g} "
            f"(hashes of other files aside), {tally.get('moved', 0)} moved more (MOVED above), "
            f"{tally.get('binary', 0)} binary intermediates are checked through the results computed from them, "
            f"{tally.get('rendering', 0)} renderings through their numbers"
        )
    if failures and manifest["code"]["sources_sha256"] != expected["code"]["sources_sha256"]:
        notes.append(  # a likely reason for the differences; when everything matches, code edits do not matter
            "note: this run's code differs from the code that made the expected manifest "
            f"(git {expected['code'].get('git_commit')}): if the change was meant to change these results, "
            "accept them with --update-expected"
        )
    return failures, notes


def _arith(arith: dict[str, Any] | None) -> str:
    if not arith:
        return "(not recorded)"
    return f"({arith['cpu']}, {arith['cpu_capability']}, torch {arith['torch']}" + (
        f", {', '.join(arith['gpu'])})" if arith.get("gpu") else ")"
    )


def _verdicts(claims: Any) -> dict[str, Any]:
    return {c["id"]: c["verdict"] for c in claims["claims"]} if isinstance(claims, dict) else {}


def _compare_across(
    path: str, root: Path, study: str, entry: dict[str, Any] | None, digest: str, tally: dict[str, int],
    notes: list[str],
) -> list[str]:  # fmt: skip
    """A file whose sha256 differs from the expected one, made with other arithmetic: a failure when it holds
    findings that differ or has no expected values; a ``MOVED`` note when its numbers moved beyond float noise."""
    suffix = Path(path).suffix
    kind = "binary" if suffix == ".safetensors" else "rendering" if suffix in RENDERINGS else None
    if kind:
        tally[kind] = tally.get(kind, 0) + 1
        return []
    if entry is None or entry.get("sha256") != digest:
        return [f"DIFFERS  {path} (sha256 differs from the expected manifest; no expected values to compare with)"]
    ours, theirs = file_values(resolve(path, root)), entry["data"]
    finding = next((f for f in FINDINGS if fnmatch.fnmatch(path, f"{results_dir(study)}/{f}")), None)
    if finding == relative("claims_json"):  # the verdicts are findings; the numbers and notes are compared below
        ours_v, theirs_v = _verdicts(ours), _verdicts(theirs)
        changed = sorted(k for k in set(ours_v) | set(theirs_v) if ours_v.get(k) != theirs_v.get(k))
        if changed:
            detail = "; ".join(f"{k}: {ours_v.get(k)!r}, expected {theirs_v.get(k)!r}" for k in changed[:5])
            return [f"VERDICT  {path}: {len(changed)} claims' verdicts differ ({detail})"]
        tally["findings"] = tally.get("findings", 0) + 1
    elif finding:
        if problem := diff_content(suffix, ours, theirs, 0.0, 0.0, hashes=False):
            return [f"FINDING  {path} differs from the expected: {problem}"]
        tally["findings"] = tally.get("findings", 0) + 1
        return []
    if problem := diff_content(suffix, ours, theirs, CROSS_RTOL, CROSS_ATOL, hashes=False):
        notes.append(f"MOVED    {path} beyond rtol={CROSS_RTOL:g}, atol={CROSS_ATOL:g}: {problem}")
        tally["moved"] = tally.get("moved", 0) + 1
    elif not finding:
        tally["within"] = tally.get("within", 0) + 1
    return []


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
    values: Path | None = None,
) -> tuple[list[str], list[str]]:
    """``(failures, notes)`` of the results under ``root`` (``values``: the expected run's numbers)."""
    manifest_path = manifest_path or root / result(results_dir(study), "manifest")
    if not manifest_path.is_file():
        return [f"MISSING  {manifest_path}: run snakemake first (the rule manifest writes it)"], []
    manifest = load(manifest_path)
    failures = check_files(manifest, root)
    notes = [f"checked {len(manifest['files'])} files of {len(manifest['jobs'])} jobs against {manifest_path}"]
    if expected is not None:
        numbers = load(values)["files"] if values is not None and values.is_file() else None
        more, extra_notes = compare_expected(manifest, load(expected), root, reference, rtol, atol, numbers)
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
    ap.add_argument(
        "--values",
        type=Path,
        help="the expected run's numbers, compared when this run's arithmetic differs; default "
        "results/expected/STUDY-values.json with the default expected manifest",
    )
    ap.add_argument("--reference", type=Path, help="a results tree matching the expected manifest, for tolerances")
    ap.add_argument("--rtol", type=float, default=0.0)
    ap.add_argument("--atol", type=float, default=0.0)
    ap.add_argument(
        "--update-expected",
        action="store_true",
        help="copy the checked manifest to the expected one, and write the expected values beside it",
    )
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
    values = args.values or (values_path(args.study) if not args.expected else None)
    if args.update_expected:
        expected = None
    failures, notes = verify(
        args.root, args.study, args.manifest, expected, args.reference, args.rtol, args.atol, values
    )
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
        checked = args.manifest or args.root / result(results_dir(args.study), "manifest")
        shutil.copyfile(checked, target)
        print(f"updated {target}")
        if values is not None:
            count = write_values(load(checked), args.root, values)
            print(f"updated {values} ({count} JSON and CSV files)")
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
