"""How a checker compares the learner's answer with the reference, and says what differs."""

from __future__ import annotations

import math

import numpy as np

from lora_lab.course.i18n import Msg, t


def to_array(value) -> np.ndarray | None:
    """A learner's answer as a float64 array, or None if it is not numeric."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().double().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def compare(got, expected, rtol: float = 1e-5, atol: float = 1e-6) -> Msg | None:
    """None when `got` matches `expected`; otherwise a message saying what differs and how."""
    if got is None:
        return t("your function returned None — did you forget `return`?")
    exp, out = to_array(expected), to_array(got)
    if out is None:
        return t("expected a number or an array, got {kind}", kind=type(got).__name__)
    if out.shape != exp.shape:
        swapped = exp.ndim == 2 and out.shape == exp.shape[::-1]
        if swapped:
            return t("expected shape {want}, got {got} — did you swap A and B, or transpose?",
                     want=exp.shape, got=out.shape)
        return t("expected shape {want}, got {got}", want=exp.shape, got=out.shape)
    if not np.isfinite(out).all():
        return t("your answer contains NaN or inf — look for a division by zero or an uninitialised tensor")
    if _close(out, exp, rtol, atol):
        return None
    ratio = _constant_ratio(out, exp) if exp.size > 1 else None  # any two numbers have a ratio
    if ratio is not None:
        return t("off by a factor {ratio:.4g} — is a scaling (such as α/r) missing or applied twice?",
                 ratio=ratio)
    if exp.size == 1:
        return t("expected {want:.6g}, got {got:.6g}", want=exp.item(), got=out.item())
    err = float(np.max(np.abs(out - exp)))
    return t("values differ from the reference (largest difference {err:.3g})", err=err)


def _constant_ratio(out: np.ndarray, exp: np.ndarray) -> float | None:
    mask = np.abs(exp) > 1e-12
    if not mask.any() or (np.abs(out[~mask]) > 1e-9).any():
        return None
    ratios = out[mask] / exp[mask]
    r = float(np.median(ratios))
    if math.isclose(r, 1.0, rel_tol=1e-4) or abs(r) < 1e-12:
        return None
    return r if np.allclose(ratios, r, rtol=1e-4) else None
