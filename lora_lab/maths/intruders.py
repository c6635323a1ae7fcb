"""Intruder dimensions (Shuttleworth et al. 2024, arXiv 2410.21228), for notebook 12. Pure NumPy.

After fine-tuning, W = W0 + ΔW. Take the left singular vectors of both (columns of U, strongest
first). A top singular vector u_j of W is an *intruder* when it resembles none of W0's:
max_i |cos(u_j, u0_i)| < ε. The authors' code looks at the top k = 10 vectors of each adapted
matrix with ε = 0.5 by default (`find_intruder_dimensions.py` in reeceshuttle/intruder-dimensions);
the sign of a singular vector is arbitrary, hence the absolute value.

Scaling an intruder down is the paper's causal test: σ_j -> λ·σ_j for the intruders only, every
other singular direction of W untouched.
"""

from __future__ import annotations

import numpy as np

from lora_lab._checks import as_matrix, check_int

TOP_K, THRESHOLD = 10, 0.5  # the authors' defaults


def _check_pair(W0, W) -> tuple[np.ndarray, np.ndarray]:
    W0, W = as_matrix("W0", W0), as_matrix("W", W)
    if W0.shape != W.shape:
        raise ValueError(f"W must have the shape of W0 {W0.shape} (d_out, d_in), got {W.shape}")
    return W0, W


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError(f"threshold must be a cosine in (0, 1], got {threshold!r}")
    return float(threshold)


def best_match(W0, W) -> np.ndarray:
    """For each left singular vector of W (strongest first), its largest |cosine| with any left
    singular vector of W0.  Shapes: W0, W (d_out, d_in) -> (min(d_out, d_in),), values in [0, 1]."""
    W0, W = _check_pair(W0, W)
    U0 = np.linalg.svd(W0, full_matrices=False)[0]  # (d_out, m)
    U = np.linalg.svd(W, full_matrices=False)[0]  # (d_out, m)
    return np.abs(U.T @ U0).max(axis=1)  # (m,)


def intruders(W0, W, k: int = TOP_K, threshold: float = THRESHOLD) -> np.ndarray:
    """Indices (0 = strongest) of the top-`k` singular vectors of W whose best |cosine| with W0's
    singular vectors is below `threshold`.  Shapes: W0, W (d_out, d_in) -> (n_intruders,)."""
    match = best_match(W0, W)
    k = check_int("k", k, low=1, high=len(match))
    return np.flatnonzero(match[:k] < _check_threshold(threshold))


def count_intruders(pairs, k: int = TOP_K, threshold: float = THRESHOLD) -> int:
    """The number of intruders summed over (W0, W) pairs, one per adapted matrix."""
    return sum(len(intruders(W0, W, k, threshold)) for W0, W in pairs)


def scale_intruders(W0, W, lam: float, k: int = TOP_K, threshold: float = THRESHOLD) -> np.ndarray:
    """W with the singular value of each intruder multiplied by `lam` (1: unchanged, 0: removed).
    Shapes: W0, W (d_out, d_in) -> (d_out, d_in)."""
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam <= 1:
        raise ValueError(f"lam must be a number in [0, 1], got {lam!r}")
    W0, W = _check_pair(W0, W)
    idx = intruders(W0, W, k, threshold)
    U, S, Vh = np.linalg.svd(W, full_matrices=False)
    # W + (λ - 1) Σ_j σ_j u_j v_jᵀ over the intruders j: only their directions change
    return W + (lam - 1.0) * (U[:, idx] * S[idx]) @ Vh[idx]
