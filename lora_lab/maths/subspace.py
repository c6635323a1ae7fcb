"""The paper's Section 7 analyses: subspace similarity φ (§7.2) and ΔW vs W amplification (§7.3).

φ(A1, A2, i, j) = ‖U1[:, :i]ᵀ U2[:, :j]‖_F² / min(i, j) ∈ [0, 1], where the columns of U are the
singular vectors that span A's row space: A is (r, d_in), so these are A's *right* singular
vectors (`Vh[:i].T` of `np.linalg.svd`). §7.2 says "right"; Appendix G says "left" because it
writes A the other way round (d_in, r). Either way: the directions in the input space that A reads.

The whole (r1, r2) grid needs one SVD per matrix, one product and two cumulative sums: with
G = (Vh1 Vh2ᵀ)², ‖U1[:, :i]ᵀ U2[:, :j]‖_F² is the sum of G over its top-left i×j block.
"""

from __future__ import annotations

import numpy as np

from lora_lab._checks import as_matrix, check_int, check_rank


def row_space_basis(A, name: str = "A") -> np.ndarray:
    """A's right singular vectors, strongest first, as rows.  Shapes: A (r, d_in) -> (r, d_in).

    A must have linearly independent rows (r ≤ d_in, full rank): otherwise some directions are
    arbitrary and φ would measure noise from the SVD routine, not from A.
    """
    A = as_matrix(name, A)
    r, d_in = A.shape
    if r > d_in:
        raise ValueError(f"{name} must have at most d_in={d_in} rows (shape (r, d_in)), got shape {A.shape}"
                         " — did you pass B (d_out, r) or a transposed A?")
    _, S, Vh = np.linalg.svd(A, full_matrices=False)  # Vh (r, d_in)
    rank = int((S > S[0] * max(A.shape) * np.finfo(float).eps).sum()) if S[0] > 0 else 0
    if rank < r:
        raise ValueError(f"{name} must have linearly independent rows: its rank is {rank} < r={r}, "
                         "so its row space has fewer than r directions")
    return Vh


def subspace_similarity(A1, A2) -> np.ndarray:
    """φ for every i ≤ r1, j ≤ r2: phi[i-1, j-1] = ‖U1[:, :i]ᵀ U2[:, :j]‖_F² / min(i, j).

    Shapes: A1 (r1, d_in), A2 (r2, d_in) -> phi (r1, r2). NumPy arrays or torch tensors.
    """
    A1, A2 = as_matrix("A1", A1), as_matrix("A2", A2)
    if A1.shape[1] != A2.shape[1]:
        raise ValueError(f"A1 and A2 must share d_in (their number of columns), got A1 (..., "
                         f"{A1.shape[1]}) and A2 (..., {A2.shape[1]})")
    V1, V2 = row_space_basis(A1, "A1"), row_space_basis(A2, "A2")
    G = (V1 @ V2.T) ** 2  # (r1, r2): squared cosine between direction i of A1 and j of A2
    overlap = G.cumsum(axis=0).cumsum(axis=1)  # (r1, r2): ‖U1[:, :i]ᵀ U2[:, :j]‖_F²
    i = np.arange(1, G.shape[0] + 1)[:, None]  # (r1, 1)
    j = np.arange(1, G.shape[1] + 1)[None, :]  # (1, r2)
    return np.clip(overlap / np.minimum(i, j), 0.0, 1.0)  # clip: rounding can give 1 + 1e-16


def random_baseline(r1: int, r2: int, d_in: int) -> np.ndarray:
    """What φ averages to for independent random subspaces: max(i, j) / d_in.  Shape: (r1, r2)."""
    d_in = check_int("d_in", d_in, low=1)
    r1, r2 = check_int("r1", r1, low=1, high=d_in), check_int("r2", r2, low=1, high=d_in)
    i, j = np.arange(1, r1 + 1)[:, None], np.arange(1, r2 + 1)[None, :]
    return np.maximum(i, j) / d_in  # (r1, r2): E‖U1ᵀU2‖_F² = i·j / d_in, divided by min(i, j)


def _top_directions(M: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    U, _, Vh = np.linalg.svd(M, full_matrices=False)
    return U[:, :r], Vh[:r].T  # (d_out, r), (d_in, r)


def _projected_norm(W: np.ndarray, U: np.ndarray, V: np.ndarray) -> float:
    return float(np.linalg.norm(U.T @ W @ V))  # ‖Uᵀ W V‖_F of the (r, r) projection


def amplification(W, delta_W, r: int, seed: int = 0) -> dict:
    """Paper §7.3 / Table 7: how strongly W already holds the directions ΔW adds.

    ‖UᵀWV‖_F with U (d_out, r), V (d_in, r) the top-r left/right singular vectors of ΔW ("delta"),
    of W itself ("W"), or of a random Gaussian matrix ("random", from `seed`); ‖W‖_F, ‖ΔW‖_F and
    the amplification factor ‖ΔW‖_F / ‖UᵀWV‖_F (ΔW's directions). The paper writes UᵀWVᵀ with
    V's rows as the directions; with V's columns as here, the product is UᵀWV.
    Shapes: W (d_out, d_in), delta_W (d_out, d_in).
    """
    W, dW = as_matrix("W", W), as_matrix("delta_W", delta_W)
    if W.shape != dW.shape:
        raise ValueError(f"W and delta_W must have the same shape, got {W.shape} and {dW.shape}")
    r = check_rank(r, d_in=W.shape[1], d_out=W.shape[0])
    if not np.any(dW):
        raise ValueError("delta_W is all zeros: it has no directions (was B still at its zero init?)")
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    on = {kind: _projected_norm(W, *_top_directions(M, r))
          for kind, M in [("delta", dW), ("W", W), ("random", rng.standard_normal(W.shape))]}
    delta_norm = float(np.linalg.norm(dW))
    return {"r": r, "proj_delta": on["delta"], "proj_W": on["W"], "proj_random": on["random"],
            "norm_W": float(np.linalg.norm(W)), "norm_delta": delta_norm,
            "factor": delta_norm / on["delta"] if on["delta"] > 0 else float("inf")}


def phi_summary(phi: np.ndarray, d_in: int) -> dict:
    """What a φ grid says in three numbers: φ(1, 1), its mean, and the mean for random subspaces."""
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim != 2 or phi.size == 0:
        raise ValueError(f"phi must be a non-empty 2-D grid, got shape {phi.shape}")
    base = random_baseline(*phi.shape, d_in)
    return {"top": float(phi[0, 0]), "mean": float(phi.mean()), "random_mean": float(base.mean())}


def phi_readout(phi: np.ndarray, d_in: int) -> str:
    """One line for the picker: the top direction's overlap and the grid's mean against random."""
    s = phi_summary(phi, d_in)
    return (f"φ(1, 1) = {s['top']:.3f} · mean φ over the {phi.shape[0]}×{phi.shape[1]} grid = {s['mean']:.3f}"
            f" (random subspaces: {s['random_mean']:.3f})")
