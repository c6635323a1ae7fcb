"""The intrinsic-dimension runs, trained once and then read back from the runs cache.

A run of `lora_lab.lab.intrinsic.train_in_subspace` is a deterministic function of its arguments
(d, hidden, steps, seed) and of the training code, and its result is one number, a test accuracy.
`cached_accuracy(settings, train)` keeps that number in
`<cache>/runs/intrinsic-v<INTRINSIC_VERSION>-<digest>.safetensors`: a float64 scalar, with the
settings in the file's metadata. The digest covers the settings, INTRINSIC_VERSION and torch's
version, so another torch, or a bumped version, trains afresh instead of reading an old number.

A hit returns the stored float, bit for bit the one the training returned. A missing entry is a
miss; an entry that cannot be read (truncated, corrupt, written for other settings) is a miss
with one warning. A miss trains and (re)writes the entry atomically (`lab.cache.atomic_path`).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import torch

from lora_lab.lab.cache import atomic_path, cache_dir

#: Bump when the training code (`intrinsic.train_in_subspace` or anything it calls: the data
#: split, the MLP, the optimizer settings, `accuracy`) changes what given arguments produce.
INTRINSIC_VERSION = 1
_KEY = "accuracy"


def _canonical(settings: dict) -> str:
    """The settings as the key sees them: JSON, sorted, with the version and torch's version."""
    return json.dumps({"v": INTRINSIC_VERSION, "torch": torch.__version__, **settings}, sort_keys=True)


def entry_path(settings: dict) -> Path:
    """Where the run with these settings is cached: `<cache>/runs/intrinsic-v<N>-<16 hex>.safetensors`."""
    if not isinstance(settings, dict):
        raise TypeError(f"settings must be a dict of the run's arguments, got {type(settings).__name__}")
    digest = hashlib.sha256(_canonical(settings).encode()).hexdigest()[:16]
    return cache_dir("runs") / f"intrinsic-v{INTRINSIC_VERSION}-{digest}.safetensors"


def load_accuracy(settings: dict) -> float | None:
    """The cached accuracy of these settings, or None (no entry; or, with a warning, a bad one)."""
    from safetensors import safe_open

    path = entry_path(settings)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            value = f.get_tensor(_KEY)
        if meta.get("settings") != _canonical(settings) or value.dtype != torch.float64 or value.numel() != 1:
            raise ValueError("the entry holds another run")
        return float(value.item())
    except Exception as error:  # a truncated or corrupt file (a kernel killed mid-write): a miss
        warnings.warn(f"unreadable cached intrinsic-dimension run {path.name} "
                      f"({type(error).__name__}: {error}): training it again", stacklevel=3)
        return None


def save_accuracy(settings: dict, accuracy: float) -> Path:
    """Write `accuracy` as the entry of these settings (float64, atomically); returns its path."""
    from safetensors.torch import save_file

    path = entry_path(settings)
    tensors = {_KEY: torch.tensor(float(accuracy), dtype=torch.float64)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"settings": _canonical(settings)})
    return path


def cached_accuracy(settings: dict, train: Callable[[], float]) -> float:
    """The cached accuracy of `settings`, else `train()`'s, which is then written to the cache."""
    found = load_accuracy(settings)
    if found is not None:
        return found
    accuracy = float(train())
    save_accuracy(settings, accuracy)
    return accuracy
