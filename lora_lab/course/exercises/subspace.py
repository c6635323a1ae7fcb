"""Checkers for the exercises of `07_subspace_similarity`."""

from __future__ import annotations

import numpy as np

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases, to_array
from lora_lab.maths.subspace import amplification, subspace_similarity


def _mats(seed: int, r1: int, r2: int, d_in: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((r1, d_in)), rng.standard_normal((r2, d_in))


def _rows_phi(A1, A2, i, j):
    return np.linalg.norm(A1[:i] @ A2[:j].T) ** 2 / min(i, j)


def _left_phi(A1, A2, i, j):
    U1, U2 = np.linalg.svd(A1)[0], np.linalg.svd(A2)[0]
    return np.linalg.norm(U1[:, :i].T @ U2[:, :j]) ** 2 / min(i, j)


def check_phi_cell(fn) -> CheckResult:
    """`fn(A1, A2, i, j)` -> φ(A1, A2, i, j) for A1 (r1, d_in), A2 (r2, d_in)."""
    specs = [(0, 4, 4, 10, 2, 3), (1, 3, 6, 8, 3, 2), (2, 5, 5, 12, 1, 1), (3, 2, 8, 16, 2, 8)]
    cases = []
    for seed, r1, r2, d, i, j in specs:
        A1, A2 = _mats(seed, r1, r2, d)
        cases.append(Case(f"A1 {A1.shape}, A2 {A2.shape}, i={i}, j={j}", (A1, A2, i, j),
                          subspace_similarity(A1, A2)[i - 1, j - 1]))
    mistakes = [
        Mistake(_left_phi, "those are A's left singular vectors (they live in R^r); A is (r, d_in), so "
                "the input directions it reads are its right singular vectors: rows of Vh"),
        Mistake(lambda A1, A2, i, j: subspace_similarity(A1, A2)[i - 1, j - 1] * min(i, j) / max(i, j),
                "divide by min(i, j): at best the smaller subspace fits entirely inside the larger"),
        Mistake(lambda A1, A2, i, j: np.sqrt(subspace_similarity(A1, A2)[i - 1, j - 1] * min(i, j))
                / min(i, j), "square the Frobenius norm"),
        Mistake(_rows_phi, "use singular vectors (orthonormal, strongest first), not A's raw rows"),
    ]
    return run_cases("phi_cell", fn, cases, mistakes, rtol=1e-6, atol=1e-9)


def _as_projector(U, d_in: int, i: int) -> np.ndarray:
    """U Uᵀ, which does not depend on the signs of the vectors; a wrong shape gets a hint."""
    arr = to_array(U)
    if arr is None or arr.shape != (d_in, i):
        got = None if arr is None else arr.shape
        hint = (" — transpose: one direction per column" if got == (i, d_in)
                else " — A is (r, d_in): its right singular vectors live in R^d_in")
        raise ValueError(f"expected shape (d_in, i)=({d_in}, {i}), got {got}{hint}")
    return arr @ arr.T  # (d_in, d_in)


def _reference_directions(A, i):
    return np.linalg.svd(A, full_matrices=False)[2][:i].T  # (d_in, i)


def check_top_directions(fn) -> CheckResult:
    """`fn(A, i)` -> the top-i directions of A's row space as orthonormal columns (d_in, i).

    Compared as projectors U Uᵀ, so either sign of each singular vector is accepted."""
    specs = [(0, 3, 10, 2), (1, 5, 7, 5), (2, 4, 12, 1)]
    cases = []
    for seed, r, d, i in specs:
        A = np.random.default_rng(seed).standard_normal((r, d)) * (10.0 ** seed)
        cases.append(Case(f"A {A.shape} (scale {10 ** seed}), i={i}", (A, i),
                          _as_projector(_reference_directions(A, i), d, i)))

    def learner(A, i):
        return _as_projector(fn(A, i), A.shape[1], i)

    mistakes = [Mistake(lambda A, i: _as_projector(A[:i].T, A.shape[1], i),
                        "A's rows are not orthonormal: their length grows with A's scale, and φ would "
                        "too; take the SVD's right singular vectors")]
    return run_cases("top_directions", learner, cases, mistakes, rtol=1e-6, atol=1e-9)


def _constructed(seed: int, d: int, r: int):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((d, d)) * 3
    return W, rng.standard_normal((d, r)) @ rng.standard_normal((r, d)), r


def check_amplification_factor(fn) -> CheckResult:
    """`fn(W, delta_W, r)` -> ‖ΔW‖_F / ‖UᵀWV‖_F with U, V the top-r singular vectors of ΔW."""
    shapes = [(0, 8, 2), (1, 12, 4), (2, 6, 1)]
    cases = [Case(f"W ({d}, {d}), ΔW of rank {r}", _constructed(s, d, r),
                  amplification(*_constructed(s, d, r))["factor"]) for s, d, r in shapes]

    def own(W, dW, r):
        out = amplification(W, dW, r)
        return out["norm_delta"] / out["proj_W"]

    mistakes = [
        Mistake(own, "project W on ΔW's singular vectors, not on W's own"),
        Mistake(lambda W, dW, r: 1 / amplification(W, dW, r)["factor"],
                "the ratio is upside down: ‖ΔW‖_F goes on top"),
        Mistake(lambda W, dW, r: np.linalg.norm(dW) / np.linalg.norm(W),
                "compare with the part of W inside ΔW's directions (‖UᵀWV‖_F), not with all of W"),
    ]
    return run_cases("amplification_factor", fn, cases, mistakes, rtol=1e-6)
