"""Job records, the hash manifest of a study, and the provenance of a run.

Every rule's script records its job when its work finishes successfully (``recorded``): rule,
wildcards, the sha256 of every output and input file, the parameters, seed and threads, the code
version and the environment, in ``results/<study>/.provenance/<rule>[/<wildcards>].json``.
The rule ``manifest`` merges the records of the jobs that made the study's final targets into
``results/<study>/manifest.json`` (deterministic: sorted keys, no timestamps, no absolute paths)
and writes ``results/<study>/provenance.json`` (the run's environment: package versions,
Python, torch, CUDA, GPU, image, git commit, lock-file hashes; volatile, never compared).
``entity_tracking.verify`` checks a results tree against its manifest and an expected manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote

from entity_tracking.io import atomic_write, is_workflow_output, sha256_file
from entity_tracking.job_config import RUNTIME_KEYS
from entity_tracking.layout import RECORDS, results_dir

REPO = Path(__file__).resolve().parent.parent
FORMAT = 2  # 2: the study is named by the key 'study' (1: 'profile')
# What "the code" is: every file whose change can change an output.
CODE_GLOBS = (
    "Snakefile",
    "rules/*.smk",
    "scripts/*.py",
    "entity_tracking/**/*.py",
    "entity_tracking/data/*",
    "config/**/*.yaml",
)
LOCKS = ("envs/requirements-cpu.txt", "envs/requirements-cuda.txt")
# Fields of a job that must be equal between two runs that claim the same results; the rest
# (code version, environment, device) says how a run was made and is reported, never compared.
COMPARED_JOB_FIELDS = ("rule", "wildcards", "outputs", "inputs", "params", "seed", "threads")


class ManifestError(RuntimeError):
    """The job records do not describe the files on disk (a file changed after its job, or a job is unrecorded)."""


def canonical(obj: Any) -> str:
    """Deterministic JSON text: sorted keys, fixed indentation, trailing newline."""
    return json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def sha256_json(obj: Any) -> str:
    return hashlib.sha256(canonical(obj).encode()).hexdigest()


def portable(obj: Any, workdir: str | Path | None = None) -> Any:
    """``obj`` with absolute paths made machine-independent: ``{repo}/...`` inside this repository,
    relative inside the working directory. Tuples become lists; other values are kept."""
    # the more specific root wins; the repository wins a tie (a run inside the checkout)
    cwd = str(Path(workdir or os.getcwd()).resolve())
    roots = sorted([(str(REPO), "{repo}"), (cwd, "")], key=lambda r: -len(r[0]))

    def fix(value: Any) -> Any:
        if isinstance(value, str) and value.startswith("/"):
            for root, repl in roots:
                if value == root or value.startswith(root + "/"):
                    rel = value[len(root) :].lstrip("/")
                    return "/".join(p for p in (repl, rel) if p) or "."
            return value
        if isinstance(value, Mapping):
            return {str(k): fix(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [fix(v) for v in value]
        if isinstance(value, str | int | float | bool) or value is None:
            return value
        return str(value)

    return fix(obj)


def resolve(path: str, root: str | Path = ".") -> Path:
    """The file a portable path names: ``{repo}/...`` in this repository, others under ``root``."""
    if path.startswith("{repo}/"):
        return REPO / path.removeprefix("{repo}/")
    return Path(root) / path


def expand_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named by ``paths``: a directory stands for every file below it."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():  # but Snakemake's own marker in directory outputs
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and p.name != ".snakemake_timestamp"))
        else:
            out.append(path)
    return out


def file_name(path: str | Path, workdir: str | Path | None = None) -> str:
    """A file's portable name: a workflow output relative to the working directory (``results/...``), any
    other file (a source, such as the shipped base model) as ``{repo}/...`` when it is in this repository."""
    path = Path(path)
    if not path.is_absolute() and not is_workflow_output(path):
        path = Path(workdir or os.getcwd()).resolve() / path
    return portable(str(path), workdir)


def file_hashes(paths: Iterable[str | Path], workdir: str | Path | None = None) -> dict[str, str]:
    """``{portable name: sha256}`` of files; a directory contributes every file below it."""
    return {file_name(f, workdir): sha256_file(f) for f in expand_files(paths)}


def code_version() -> dict[str, Any]:
    """sha256 over the sources (package, rules, scripts, config), with the git commit when known."""
    lines = []
    for pattern in CODE_GLOBS:
        for file in sorted(REPO.glob(pattern)):
            if file.is_file() and "__pycache__" not in file.parts:
                lines.append(f"{file.relative_to(REPO)} {sha256_file(file)}\n")
    return {"sources_sha256": hashlib.sha256("".join(sorted(lines)).encode()).hexdigest(), **git_state()}


def git_state() -> dict[str, Any]:
    """The git commit of the checkout (``GIT_COMMIT`` in an image without ``.git``) and whether it has edits."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return {"git_commit": commit, "git_dirty": bool(dirty)}
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": os.environ.get("GIT_COMMIT") or None, "git_dirty": None}


def environment() -> dict[str, Any]:
    """What the run's software is: Python, platform, every installed package, lock files, image."""
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "system": platform.system(),
        "packages": dict(sorted(packages.items())),
        "locks": {lock: sha256_file(REPO / lock) for lock in LOCKS if (REPO / lock).is_file()},
        "image": {
            "base": os.environ.get("ET_BASE_IMAGE") or None,  # set in the Dockerfile (the pinned base digest)
            "id": os.environ.get("ET_IMAGE_ID") or None,  # passed by the runner: docker run -e ET_IMAGE_ID=...
            "lock": os.environ.get("ET_LOCK") or None,  # the lock file the image was built from
        },
    }


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo``), or what ``platform`` knows of it."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def arithmetic() -> dict[str, Any]:
    """What decides a run's floating-point results bit for bit: the processor, the instruction set torch's CPU
    kernels use, torch's version and the GPUs. Runs that agree on it give byte-identical files."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch": torch.__version__,
        "gpu": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else None,
    }


def device_info() -> dict[str, Any]:
    """torch, its CUDA and cuDNN builds, and the GPU (or ``cpu``) this process sees."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else "cpu",
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "threads": torch.get_num_threads(),
    }


def record_path(results_dir: str | Path, rule: str, wildcards: Mapping[str, str]) -> Path:
    """Where the record of one job lives: one file per rule and wildcard values."""
    base = Path(results_dir) / RECORDS / rule
    if not wildcards:
        return base.with_suffix(".json")
    return base / (",".join(f"{k}={quote(str(v), safe='')}" for k, v in sorted(wildcards.items())) + ".json")


def job_id(rule: str, wildcards: Mapping[str, str]) -> str:
    return rule + ("[" + ",".join(f"{k}={v}" for k, v in sorted(wildcards.items())) + "]" if wildcards else "")


def job_record(
    job: Any, seed: int | None, threads: int | None, config: Mapping[str, Any], read: Iterable[str] | None = None
) -> dict[str, Any]:
    """The record of a finished Snakemake script job (``job`` is the script's ``snakemake`` object; ``config``
    the run's config, ``read`` the settings the job read)."""
    params = {k: v for k, v in job.params.items()}
    device = None
    if "torch" in sys.modules:  # only jobs that use torch have a device
        torch = sys.modules["torch"]
        device = torch.cuda.get_device_name(torch.cuda.current_device()) if torch.cuda.is_initialized() else "cpu"
    return {
        "rule": job.rule,
        "wildcards": dict(job.wildcards.items()),
        "outputs": file_hashes(job.output),
        "inputs": file_hashes(job.input),
        "params": portable(params),
        "seed": seed,
        "threads": threads,
        "config_sha256": sha256_json(portable(config)),
        "code": code_version(),
        "environment_sha256": sha256_json(environment()),
        "device": device,
        **({"config_read": sorted(read)} if read is not None else {}),
    }


def write_record(
    job: Any,
    seed: int | None = None,
    threads: int | None = None,
    config: Mapping[str, Any] | None = None,
    read: Iterable[str] | None = None,
) -> Path:
    """Write the record of a finished job atomically; returns its path."""
    config = job.config if config is None else config
    path = record_path(results_dir(config["study"]), job.rule, dict(job.wildcards.items()))
    with atomic_write(path) as fh:
        fh.write(canonical(job_record(job, seed, threads, config, read)))
    return path


def check_code(job: Any) -> None:
    """Stop a job whose package is not its own workflow's checkout. Snakemake puts the workflow's directory
    after the installed packages in a script job, so a regular install from elsewhere would win."""
    scriptdir = getattr(job, "scriptdir", None)  # every Snakemake script job has one
    workflow = Path(scriptdir).resolve().parent if scriptdir is not None else REPO
    if workflow != REPO:
        raise RuntimeError(
            f"rule {job.rule}: this job imports entity_tracking from {REPO}, not from its workflow's checkout "
            f"{workflow}, so it would run other code. Fix: {sys.executable} -m pip install --no-deps "
            f"--no-build-isolation -e {workflow} (or run with PYTHONPATH={workflow})."
        )


@contextmanager
def recorded(
    job: Any,
    seed: int | None = None,
    threads: int | None = None,
    record: bool = True,
    config: Mapping[str, Any] | None = None,
    read: set[str] | None = None,
) -> Iterator[None]:
    """Around the work of a rule script's job: check the generated files it reads (``integrity.check_job``),
    and, with ``record``, write its record when the block ends without an exception and every output exists.
    When the block raises, no record is written and the exception propagates. ``config`` is the run's
    config when ``job.config`` is the job's view of it (``runtime.job_context``); ``read`` is the set the view
    fills with the settings the job reads, listed in the record as ``config_read`` (runtime keys left out).

    A record is only a claim: the manifest rule checks every record against the files on disk, so
    a record left by a job that failed later (its outputs deleted by Snakemake) is never trusted.
    """
    from entity_tracking.integrity import check_job  # integrity imports this module

    check_code(job)
    config = job.config if config is None else config
    check_job(job, config)  # before anything is read: the generated inputs are what their jobs wrote
    yield
    if record and all(Path(p).exists() for p in job.output):
        settings = None if read is None else {k for k in read if k.split(".")[0] not in RUNTIME_KEYS}
        write_record(job, seed, threads, config, settings)


def read_records(results_dir: str | Path) -> list[dict[str, Any]]:
    root = Path(results_dir) / RECORDS
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(root.rglob("*.json"))]


def build_manifest(
    study: str,
    targets: Iterable[str],
    config: Mapping[str, Any],
    records: list[dict[str, Any]],
    root: str | Path = ".",
) -> dict[str, Any]:
    """The manifest of the jobs that made ``targets``, walking back from them through the records.

    Raises ``ManifestError`` naming every target without a record and every file whose bytes are no
    longer what its job (or the job that read it) recorded.
    """
    producer: dict[str, dict[str, Any]] = {}
    for rec in records:
        for path in rec["outputs"]:
            producer[path] = rec
    wanted = sorted(portable(str(f), root) for f in expand_files(targets))
    jobs: dict[str, dict[str, Any]] = {}
    sources: dict[str, str] = {}
    problems: list[str] = []
    todo = list(wanted)
    while todo:
        path = todo.pop()
        rec = producer.get(path)
        if rec is None:
            problems.append(
                f"{path}: no job record in {RECORDS}/ (rerun the job that makes it with snakemake --forcerun; "
                "every rule's script must do its work inside runtime.job_context or provenance.recorded)"
            )
            continue
        key = job_id(rec["rule"], rec["wildcards"])
        if key in jobs:
            continue
        jobs[key] = rec
        for inp, digest in rec["inputs"].items():
            if inp in producer:
                todo.append(inp)
            else:
                sources[inp] = digest
    files = {path: digest for rec in jobs.values() for path, digest in rec["outputs"].items()}
    for path, digest in sorted({**files, **sources}.items()):
        file = resolve(path, root)
        actual = sha256_file(file) if file.is_file() else None
        if actual != digest:
            what = "is missing" if actual is None else "changed"
            problems.append(f"{path} {what} since its job recorded it (sha256 {digest[:12]}…)")
    for key, rec in jobs.items():
        for inp, digest in rec["inputs"].items():
            if files.get(inp, sources.get(inp)) != digest:
                problems.append(f"{key} read {inp} before it last changed: rerun the job (snakemake --forcerun)")
    if problems:
        raise ManifestError("the job records do not match the files:\n  " + "\n  ".join(sorted(set(problems))))
    return {
        "format": FORMAT,
        "study": study,
        "config": portable(config),
        "files": dict(sorted(files.items())),
        "sources": dict(sorted(sources.items())),
        # a job's files by name: their hashes are in files and sources, and the records' input hashes
        # were just checked against them
        "jobs": {
            key: {**jobs[key], "inputs": sorted(jobs[key]["inputs"]), "outputs": sorted(jobs[key]["outputs"])}
            for key in sorted(jobs)
        },
        "code": code_version(),
        "arithmetic": arithmetic(),  # compared by verify: it says whether bytes can match
    }


def provenance(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The run's environment and device, and how many of the manifest's jobs ran in which environment."""
    env = environment()
    counts: dict[str, int] = {}
    for rec in records:
        counts[rec["environment_sha256"]] = counts.get(rec["environment_sha256"], 0) + 1
    return {
        "created_utc": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": env,
        "environment_sha256": sha256_json(env),
        "device": device_info(),
        "code": code_version(),
        "jobs_per_environment": dict(sorted(counts.items())),
        "host": platform.node(),
    }


def write_manifest(
    study: str,
    targets: Iterable[str],
    config: Mapping[str, Any],
    out_manifest: str | Path,
    out_provenance: str | Path,
) -> dict[str, Any]:
    """Rule manifest: merge the job records into the manifest and write the run's provenance."""
    results_dir = Path(out_manifest).parent
    manifest = build_manifest(study, targets, config, read_records(results_dir))
    with atomic_write(out_manifest) as fh:
        fh.write(canonical(manifest))
    with atomic_write(out_provenance) as fh:
        fh.write(canonical(provenance(list(manifest["jobs"].values()))))
    return manifest
