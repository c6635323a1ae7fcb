"""What notebook 12 measures on a run, kept next to the run in the runs cache.

A run's scores (and its intruder counts, its scores after intruder surgery) are a deterministic
function of the trained run and the base checkpoint, and computing them costs more than reading
the run back. So each is written once, as a small safetensors file of float64 tensors beside the
run's own file: `<cache>/runs/<run file's stem>.<what>.safetensors`. Its metadata hold the spec,
the base checkpoint's SHA-256 and the run file's SHA-256: when the run is retrained or the base
changes, the entry no longer matches and is recomputed. A missing, stale or unreadable entry is a
miss (an unreadable one with a warning), never an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from lora_lab.lab.cache import read_tensors, write_tensors
from lora_lab.lab.models import checkpoint_path, file_sha256
from lora_lab.lab.runs import RunSpec, run_path

#: Bump when what a `what` computes changes: older entries are then ignored.
VALUES_VERSION = 1


def values_path(spec: RunSpec, what: str):
    """The entry of `what` (a short name: 'scores', 'intruders-k10-eps0.5', …) for the run `spec`."""
    if not isinstance(what, str) or not what or not all(c.isalnum() or c in "-_." for c in what):
        raise ValueError(f"what must be a non-empty name of letters, digits, '-', '_', '.', got {what!r}")
    run = run_path(spec)
    return run.with_name(f"{run.stem}.{what}.safetensors")


_SHAS: dict[tuple, str] = {}


def _sha256(path) -> str:
    """`file_sha256`, remembered while the file's inode, size and mtime stay the same (a rewrite,
    atomic or not, changes one of them), so a notebook hashes each run file once."""
    st = Path(path).stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _SHAS:
        _SHAS[key] = file_sha256(path)
    return _SHAS[key]


def _stamp(spec: RunSpec, what: str) -> dict[str, str]:
    """What an entry must match: the spec, the version, the base checkpoint and the run file."""
    return {"spec": spec.key(), "what": what, "version": str(VALUES_VERSION),
            "base_sha256": _sha256(checkpoint_path()), "run_sha256": _sha256(run_path(spec))}


def load_values(spec: RunSpec, what: str) -> dict | None:
    """The stored values (name -> float, or an array for non-scalars), or None on a miss."""
    spec, path = spec.checked(), values_path(spec, what)
    if not path.exists() or not run_path(spec).exists():
        return None
    try:
        meta, tensors = read_tensors(path)
        tensors = {k: t.numpy() for k, t in tensors.items()}
    except Exception as error:  # truncated or corrupt: recompute and rewrite it
        warnings.warn(f"unreadable cached values {path.name} ({type(error).__name__}): recomputing them",
                      stacklevel=3)
        return None
    if meta != _stamp(spec, what):
        return None
    return {k: float(v) if v.ndim == 0 else v for k, v in tensors.items()}


def save_values(spec: RunSpec, what: str, values: dict) -> None:
    """Write `values` (name -> number or array) as float64 tensors next to the run's file, atomically."""
    spec = spec.checked()
    if not isinstance(values, dict) or not values:
        raise ValueError(f"values must be a non-empty dict of numbers or arrays, got {values!r}")
    tensors = {str(k): torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in values.items()}
    write_tensors(values_path(spec, what), tensors, _stamp(spec, what))


def cached_values(spec: RunSpec, what: str, compute: Callable[[], dict]) -> dict:
    """`compute()` (which trains or loads the run), stored beside the run; read back when it matches."""
    if not callable(compute):
        raise TypeError(f"compute must be a callable returning a dict, got {type(compute).__name__}")
    spec = spec.checked()
    got = load_values(spec, what)
    if got is not None:
        return got
    values = compute()
    if run_path(spec).exists():  # a run that only lives in memory gets no entry: nothing to match
        save_values(spec, what, values)
    return {k: float(v) if np.ndim(v) == 0 else np.asarray(v, dtype=np.float64) for k, v in values.items()}
