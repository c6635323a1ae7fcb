"""Checkers for the exercises of `07_subspace_similarity`: the directions A reads, one φ cell,
the whole φ grid, and the amplification factor. Each takes `hidden=True` for its grade cell's
hidden cases."""

from __future__ import annotations

import numpy as np

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases, to_array
from lora_lab.course.i18n import N_, t
from lora_lab.maths.subspace import amplification, subspace_similarity


def _mats(seed: int, r1: int, r2: int, d_in: int):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((r1, d_in)), rng.standard_normal((r2, d_in))


def _rows_phi(A1, A2, i, j):
    return np.linalg.norm(A1[:i] @ A2[:j].T) ** 2 / min(i, j)


def _left_phi(A1, A2, i, j):
    U1, U2 = np.linalg.svd(A1)[0], np.linalg.svd(A2)[0]
    return np.linalg.norm(U1[:, :i].T @ U2[:, :j]) ** 2 / min(i, j)


def _phi_cases(specs) -> list[Case]:
    cases = []
    for seed, r1, r2, d, i, j in specs:
        A1, A2 = _mats(seed, r1, r2, d)
        cases.append(Case(f"A1 {A1.shape}, A2 {A2.shape}, i={i}, j={j}", (A1, A2, i, j),
                          subspace_similarity(A1, A2)[i - 1, j - 1]))
    return cases


def check_phi_cell(fn, hidden: bool = False) -> CheckResult:
    """`fn(A1, A2, i, j)` -> φ(A1, A2, i, j) for A1 (r1, d_in), A2 (r2, d_in).
    `hidden=True` adds the grade cell's hidden cases (more shapes, i > j, i = r1)."""
    cases = _phi_cases([(0, 4, 4, 10, 2, 3), (1, 3, 6, 8, 3, 2), (2, 5, 5, 12, 1, 1), (3, 2, 8, 16, 2, 8)])
    more = _phi_cases([(10, 6, 3, 9, 5, 3), (11, 7, 7, 7, 7, 4), (12, 1, 5, 20, 1, 5)]) if hidden else []
    mistakes = [
        Mistake(_left_phi, "those are A's left singular vectors (they live in R^r); A is (r, d_in), so "
                "the input directions it reads are its right singular vectors: rows of Vh"),
        Mistake(lambda A1, A2, i, j: subspace_similarity(A1, A2)[i - 1, j - 1] * min(i, j) / max(i, j),
                "divide by min(i, j): at best the smaller subspace fits entirely inside the larger"),
        Mistake(lambda A1, A2, i, j: np.sqrt(subspace_similarity(A1, A2)[i - 1, j - 1] * min(i, j))
                / min(i, j), "square the Frobenius norm"),
        Mistake(_rows_phi, "use singular vectors (orthonormal, strongest first), not A's raw rows"),
    ]
    return run_cases("phi_cell", fn, cases, mistakes, rtol=1e-6, atol=1e-9, hidden=more)


def _as_projector(U, d_in: int, i: int) -> np.ndarray:
    """U Uᵀ, which does not depend on the signs of the vectors; a wrong shape gets a hint."""
    arr = to_array(U)
    if arr is None or arr.shape != (d_in, i):
        got = None if arr is None else arr.shape
        transposed = N_("expected shape (d_in, i)=({d_in}, {i}), got {got} — transpose: one direction per "
                        "column")
        other = N_("expected shape (d_in, i)=({d_in}, {i}), got {got} — A is (r, d_in): its right singular "
                   "vectors live in R^d_in")
        template = transposed if got == (i, d_in) else other
        raise ValueError(t(template, d_in=d_in, i=i, got=got))
    return arr @ arr.T  # (d_in, d_in)


def _reference_directions(A, i):
    return np.linalg.svd(A, full_matrices=False)[2][:i].T  # (d_in, i)


def _direction_cases(specs) -> list[Case]:
    cases = []
    for seed, r, d, i, scale in specs:
        A = np.random.default_rng(seed).standard_normal((r, d)) * scale
        cases.append(Case(t("A {shape} (scale {scale:g}), i={i}", shape=A.shape, scale=scale, i=i), (A, i),
                          _as_projector(_reference_directions(A, i), d, i)))
    return cases


def check_top_directions(fn, hidden: bool = False) -> CheckResult:
    """`fn(A, i)` -> the top-i directions of A's row space as orthonormal columns (d_in, i).

    Compared as projectors U Uᵀ, so either sign of each singular vector is accepted.
    `hidden=True` adds the grade cell's hidden cases (tiny and huge scales, i < r)."""
    cases = _direction_cases([(0, 3, 10, 2, 1.0), (1, 5, 7, 5, 10.0), (2, 4, 12, 1, 100.0)])
    more = _direction_cases([(3, 6, 9, 4, 1e-3), (4, 2, 30, 2, 1e4)]) if hidden else []

    def learner(A, i):
        return _as_projector(fn(A, i), A.shape[1], i)

    mistakes = [Mistake(lambda A, i: _as_projector(A[:i].T, A.shape[1], i),
                        "A's rows are not orthonormal: their length grows with A's scale, and φ would "
                        "too; take the SVD's right singular vectors")]
    return run_cases("top_directions", learner, cases, mistakes, rtol=1e-6, atol=1e-9, hidden=more)


def _constructed(seed: int, d: int, r: int, d_in: int | None = None):
    rng = np.random.default_rng(seed)
    d_in = d if d_in is None else d_in
    W = rng.standard_normal((d, d_in)) * 3
    return W, rng.standard_normal((d, r)) @ rng.standard_normal((r, d_in)), r


def _amplification_cases(specs) -> list[Case]:
    return [Case(t("W ({d}, {d_in}), ΔW of rank {r}", d=d, d_in=d_in, r=r), _constructed(s, d, r, d_in),
                 amplification(*_constructed(s, d, r, d_in))["factor"]) for s, d, d_in, r in specs]


def check_amplification_factor(fn, hidden: bool = False) -> CheckResult:
    """`fn(W, delta_W, r)` -> ‖ΔW‖_F / ‖UᵀWV‖_F with U, V the top-r singular vectors of ΔW.
    `hidden=True` adds the grade cell's hidden cases (W not square: d_out ≠ d_in)."""
    cases = _amplification_cases([(0, 8, 8, 2), (1, 12, 12, 4), (2, 6, 6, 1)])
    more = _amplification_cases([(3, 6, 10, 3), (4, 14, 5, 2)]) if hidden else []

    def own(W, dW, r):
        out = amplification(W, dW, r)
        return out["norm_delta"] / out["proj_W"]

    mistakes = [
        Mistake(own, "project W on ΔW's singular vectors, not on W's own"),
        Mistake(lambda W, dW, r: 1 / amplification(W, dW, r)["factor"],
                "the ratio is upside down: ‖ΔW‖_F goes on top"),
        Mistake(lambda W, dW, r: np.linalg.norm(dW) / np.linalg.norm(W),
                "compare with the part of W inside ΔW's directions (‖UᵀWV‖_F), not with all of W"),
        Mistake(_one_sided, "project W on both sides: Uᵀ on the left (output directions) and V on "
                "the right (input directions), ‖UᵀWV‖_F"),
    ]
    return run_cases("amplification_factor", fn, cases, mistakes, rtol=1e-6, hidden=more)


def _one_sided(W, dW, r):
    Vh = np.linalg.svd(dW)[2]
    return np.linalg.norm(dW) / np.linalg.norm(W @ Vh[:r].T)


def _grid_cases(specs) -> list[Case]:
    cases = []
    for seed, r1, r2, d, scale in specs:
        A1, A2 = _mats(seed, r1, r2, d)
        cases.append(Case(f"A1 {A1.shape}, A2 {A2.shape}", (A1 * scale, A2), subspace_similarity(A1, A2)))
    return cases


def _grid_of(cell):
    """The grid a per-cell formula gives, for the known mistakes."""
    def grid(A1, A2):
        return np.array([[cell(A1, A2, i, j) for j in range(1, len(A2) + 1)] for i in range(1, len(A1) + 1)])
    return grid


def check_phi_grid(fn, hidden: bool = False) -> CheckResult:
    """`fn(A1, A2)` -> the whole grid, phi[i-1, j-1] = φ(A1, A2, i, j) for every i ≤ r1, j ≤ r2.
    Shapes: A1 (r1, d_in), A2 (r2, d_in) -> (r1, r2). `hidden=True` adds the hidden cases."""
    cases = _grid_cases([(0, 3, 5, 10, 1.0), (1, 4, 4, 8, 1.0)])
    more = _grid_cases([(2, 6, 2, 12, 1e3), (3, 1, 7, 9, 1.0), (4, 5, 5, 5, 0.1)]) if hidden else []
    mistakes = [
        Mistake(_grid_of(_left_phi), "those are A's left singular vectors (they live in R^r); use the "
                "right ones, the rows of Vh: A reads directions of the input space R^d_in"),
        Mistake(_grid_of(_rows_phi), "use singular vectors (orthonormal, strongest first), not A's raw rows"),
        Mistake(lambda A1, A2: subspace_similarity(A1, A2) * _min_over_max(len(A1), len(A2)),
                "divide by min(i, j): at best the smaller subspace fits entirely inside the larger"),
        Mistake(lambda A1, A2: np.sqrt(subspace_similarity(A1, A2) * _min(len(A1), len(A2)))
                / _min(len(A1), len(A2)),
                "square the Frobenius norm before dividing by min(i, j)"),
        Mistake(lambda A1, A2: subspace_similarity(A1, A2) * _min(len(A1), len(A2)),
                "divide each cell by min(i, j), so that φ lies in [0, 1]"),
    ]
    return run_cases("phi_grid", fn, cases, mistakes, rtol=1e-6, atol=1e-9, hidden=more)


def _min(r1: int, r2: int) -> np.ndarray:
    return np.minimum(np.arange(1, r1 + 1)[:, None], np.arange(1, r2 + 1)[None, :])  # (r1, r2)


def _min_over_max(r1: int, r2: int) -> np.ndarray:
    i, j = np.arange(1, r1 + 1)[:, None], np.arange(1, r2 + 1)[None, :]
    return np.minimum(i, j) / np.maximum(i, j)  # (r1, r2)
