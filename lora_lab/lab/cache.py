"""Where the course keeps what it builds, and how it writes it: one root, one folder per kind.

The root is `$LORA_LAB_CACHE` if set, else `<repo>/.cache` in a source checkout, else
`~/.cache/lora_lab`. Under it: `llm/` (the capstone's converted SmolLM2, written at install by
`python -m lora_lab prepare-llm`), `runs/` (trained runs, `lora_lab.lab.runs`) and `models/`
(the base checkpoint, only if the committed one is missing).

Files are written atomically: into a temporary file in the same folder, then `os.replace`d
onto the final name, so a killed kernel leaves the old entry or none, never half of one. Every
entry is one safetensors file, written by `write_tensors` and read by `read_tensors`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from lora_lab._checks import check_choice

KINDS = ("llm", "runs", "models")
_REPO = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    """$LORA_LAB_CACHE, else <repo>/.cache in a source checkout, else ~/.cache/lora_lab."""
    if os.environ.get("LORA_LAB_CACHE"):
        return Path(os.environ["LORA_LAB_CACHE"])
    if (_REPO / "pyproject.toml").is_file():
        return _REPO / ".cache"
    return Path.home() / ".cache" / "lora_lab"


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cache entry (one of KINDS), under `cache_root()`; not created."""
    return cache_root() / check_choice("kind", kind, KINDS)


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename.

    On an exception the temporary file is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


def write_tensors(path, tensors: dict, metadata: dict | None = None) -> None:
    """Write `tensors` (name -> tensor) and `metadata` (str -> str) as one safetensors file at
    `path`, atomically (`atomic_path`): the one way every cache entry of the course is written."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.detach().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def read_tensors(path) -> tuple[dict, dict]:
    """(metadata, tensors) of a safetensors file; a truncated or corrupt file raises (callers treat
    that as a cache miss)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
