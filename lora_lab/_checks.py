"""Argument checks shared by the public functions: each error names the argument, the value
received and what is valid (STYLE.md rule 6)."""

from __future__ import annotations

import numbers

import numpy as np


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """Return `value` if it is an integer in [low, high]; raise a clear error otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value}")
    return value


def check_rank(r, d_in: int, d_out: int, name: str = "r") -> int:
    """A LoRA rank: an integer in [1, min(d_in, d_out)]."""
    top = min(d_in, d_out)
    if isinstance(r, bool) or not isinstance(r, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [1, min(d_in, d_out)]=[1, {top}], "
                        f"got {r!r} ({type(r).__name__})")
    if not 1 <= r <= top:
        raise ValueError(f"{name} must be an integer in [1, min(d_in, d_out)]=[1, {top}], got {r}")
    return int(r)


def check_positive(name: str, value) -> float:
    """A real number > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number, got {value!r} ({type(value).__name__})")
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


def check_probability(name: str, value) -> float:
    """A dropout-like probability in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r} ({type(value).__name__})")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def check_choice(name: str, value, choices) -> str:
    """One of a fixed set of strings."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def as_matrix(name: str, M) -> np.ndarray:
    """A finite 2-D float array (NumPy or torch in); raise a clear error otherwise."""
    if hasattr(M, "detach"):  # a torch tensor
        M = M.detach().cpu().double().numpy()
    if not isinstance(M, (np.ndarray, list, tuple)):
        raise TypeError(f"{name} must be a 2-D array or tensor, got {type(M).__name__}")
    M = np.asarray(M)
    if M.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {M.dtype}")
    if M.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {M.shape}")
    if M.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {M.shape}")
    M = M.astype(np.float64, copy=False)
    if not np.isfinite(M).all():
        raise ValueError(f"{name} must be finite, got {int((~np.isfinite(M)).sum())} NaN/inf entries")
    return M
