"""Atomic, deterministic file output (JSON, JSONL, CSV) and checksums."""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


@contextmanager
def atomic_write(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place on success.

    A run killed half-way never leaves a truncated output that looks finished.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        newline = "" if "b" not in mode else None
        with os.fdopen(fd, mode, **({"newline": newline, "encoding": "utf-8"} if "b" not in mode else {})) as fh:
            yield fh
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Fill a temporary directory beside ``path`` and rename it into place on success.

    For directory outputs (checkpoints): a killed job leaves no half-written directory, only a
    hidden temporary one that the next attempt ignores and the failed attempt removes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp creates 0700
        if path.exists():  # an empty directory Snakemake may have made for the output
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_stale_temporaries(path: Path) -> None:
    """Remove what a killed earlier attempt at writing ``path`` left (one job writes a path at a time)."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink(missing_ok=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def dumps(obj: Any) -> str:
    """Canonical JSON text: fixed indentation, keys in insertion order, trailing newline."""
    return json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_write(path) as fh:
        fh.write(dumps(obj))


def read_json(path: str | Path) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}). The file is corrupted or was edited by hand: "
            "delete it and rerun snakemake to regenerate it."
        ) from None


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> None:
    with atomic_write(path) as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(
                    f"{path}, line {lineno}, is not valid JSON ({err}). The file is corrupted or was "
                    "edited by hand: delete it and rerun snakemake to regenerate it."
                ) from None
    return records


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """A CSV with a header of ``columns``, one line per row (keys outside ``columns`` are left out)."""
    with atomic_write(path) as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def write_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Write tensors (made contiguous, on the CPU) atomically; the bytes depend only on the contents."""
    from safetensors.torch import save

    data = save({k: v.detach().cpu().contiguous() for k, v in sorted(tensors.items())}, metadata=metadata)
    # safetensors writes the metadata in hash-map order, which varies between runs: rewrite the
    # header with sorted keys (padded to 8 bytes, as the format asks) so the bytes are reproducible.
    size = int.from_bytes(data[:8], "little")
    header = json.dumps(json.loads(data[8 : 8 + size]), sort_keys=True, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    with atomic_write(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header + data[8 + size :])


def read_safetensors(path: str | Path) -> dict[str, Any]:
    """Read a safetensors file; a damaged file gets an error that says how to regenerate it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ValueError(
            f"{path} is not a readable safetensors file ({err}). It is corrupted or incomplete: delete it "
            "and rerun snakemake to regenerate it."
        ) from None
