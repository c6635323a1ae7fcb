"""Checkers for notebook 02: the best rank-r approximation, the smallest rank that keeps a share of
the energy, the factors B, A that fit a storage budget, and the saving of rank-r factors. Each
checker's `hidden=True` adds the cases of its grade cell's hidden tests."""

from __future__ import annotations

import numpy as np

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases
from lora_lab.course.i18n import t


def _matrix(m: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, n))


def _svd_approx(M, r: int, smallest: bool = False) -> np.ndarray:
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    idx = np.arange(S.size - r, S.size) if smallest else np.arange(r)
    return (U[:, idx] * S[idx]) @ Vt[idx]  # (m, r) @ (r, n)


def _approx_cases(shapes) -> list[Case]:
    return [Case(f"M {m}×{n}, r={r}", (_matrix(m, n, s), r), _svd_approx(_matrix(m, n, s), r))
            for m, n, r, s in shapes]


def check_best_rank_r(fn, hidden: bool = False) -> CheckResult:
    """`fn(M, r)` must return the best rank-r approximation of M (m, n) -> (m, n)."""
    # r >= 2 first: a rank-1 mistake is a constant multiple, which hides the hint behind "off by a factor"
    cases = _approx_cases([(8, 5, 2, 1), (6, 6, 3, 0), (5, 9, 3, 2), (6, 6, 1, 4), (7, 7, 7, 3)])
    more = _approx_cases([(9, 4, 2, 5), (4, 10, 3, 6), (6, 8, 5, 7)]) if hidden else []

    def smallest(M, r):
        return _svd_approx(M, r, smallest=True)

    def no_sigma(M, r):
        U, _, Vt = np.linalg.svd(M, full_matrices=False)
        return U[:, :r] @ Vt[:r]

    def v_not_vt(M, r):
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        return (U[:, :r] * S[:r]) @ Vt.T[:r]

    mistakes = [
        Mistake(smallest, "you kept the r smallest singular values; np.linalg.svd sorts them largest first"),
        Mistake(no_sigma, "Σ is missing: scale the columns of U (or the rows of Vt) by the singular values"),
        Mistake(v_not_vt, "np.linalg.svd already returns Vᵀ (its rows are the right singular vectors); "
                          "take its first r rows without transposing"),
    ]
    return run_cases("best_rank_r", fn, cases, mistakes, hidden=more)


def _ratio_cases(shapes) -> list[Case]:
    return [Case(f"m={m}, n={n}, r={r}", (m, n, r), m * n / (r * (m + n))) for m, n, r in shapes]


def check_compression_ratio(fn, hidden: bool = False) -> CheckResult:
    """`fn(m, n, r)` must return m·n / (r·(m + n)): how many times fewer numbers B and A store."""
    cases = _ratio_cases([(1024, 1024, 4), (600, 512, 20), (768, 3072, 8), (12288, 12288, 4), (10, 4, 1)])
    more = _ratio_cases([(4096, 11008, 16), (50, 30, 7), (3, 3, 1)]) if hidden else []
    mistakes = [
        Mistake(lambda m, n, r: r * (m + n) / (m * n),
                "upside down: divide the matrix's m·n entries by the factors' r·(m + n), not the reverse"),
        Mistake(lambda m, n, r: m * n / (2 * r * n), "2·r·n holds only for square matrices; the factors are "
                                                      "(m × r) and (r × n)"),
        Mistake(lambda m, n, r: m * n / (r * (m + n + 1)),
                "B = U_r·Σ_r absorbs the singular values, so there are no r extra numbers to store"),
        Mistake(lambda m, n, r: m * n / (r * r), "r × r is only the size of Σ_r, not of the factors"),
    ]
    return run_cases("compression_ratio", fn, cases, mistakes, hidden=more)


def _rank_for(S, keep: float) -> int:
    shares = np.cumsum(np.asarray(S, float) ** 2) / np.sum(np.asarray(S, float) ** 2)
    return int(np.searchsorted(shares, keep - 1e-12) + 1)


def _energy_cases(spectra) -> list[Case]:
    return [Case(f"S={np.round(S[:5], 3).tolist()}{'…' if len(S) > 5 else ''}, keep={k}", (np.array(S), k),
                 _rank_for(S, k)) for S, k in spectra]


def check_rank_for_energy(fn, hidden: bool = False) -> CheckResult:
    """`fn(S, keep)` must return the smallest r whose top-r singular values keep `keep` of Σσ²."""
    cases = _energy_cases([([1.0, 1.0, 1.0, 1.0], 0.5), ([7.03, 3.0, 2.15], 0.9),
                           ([10.0, 1.0, 0.5, 0.1], 0.9), ([5.0, 4.0, 3.0, 2.0, 1.0], 0.9),
                           (list(np.geomspace(1, 1e-3, 30)), 0.99), ([3.0, 1.0], 1.0)])
    more = _energy_cases([([2.0, 2.0, 1.0, 0.5], 0.8), (list(np.geomspace(10, 0.1, 12)), 0.95),
                          ([4.0], 0.3)]) if hidden else []

    def no_square(S, keep):
        shares = np.cumsum(S) / np.sum(S)
        return int(np.searchsorted(shares, keep - 1e-12) + 1)

    def strict(S, keep):
        shares = np.cumsum(S**2) / np.sum(S**2)
        return int(np.argmax(shares > keep + 1e-12) + 1) if (shares > keep + 1e-12).any() else S.size

    mistakes = [
        Mistake(no_square, "energy is the share of Σσ², not of Σσ: square the singular values first"),
        Mistake(lambda S, keep: _rank_for(S, keep) - 1, "off by one: r counts singular values, so it is "
                                                        "the index of the first share ≥ keep plus 1"),
        Mistake(strict, "'at least keep' means share ≥ keep; you required share > keep"),
    ]
    return run_cases("rank_for_energy", fn, cases, mistakes, hidden=more)


def _budget_rank(m: int, n: int, max_numbers: int) -> int:
    return min(max_numbers // (m + n), m, n)


def _budget_cases(specs) -> list[Case]:
    cases = []
    for m, n, max_numbers, seed in specs:
        M = _matrix(m, n, seed)
        r = _budget_rank(m, n, max_numbers)
        label = t("M {m}×{n}, max_numbers={max_numbers} (so r={r})", m=m, n=n, max_numbers=max_numbers, r=r)
        cases.append(Case(label, (M, max_numbers), _svd_approx(M, r)))
    return cases


def _factor_product(fn):
    """The learner's (B, A) as the product B @ A, so that any valid factorisation passes."""
    def product(M, max_numbers):
        out = fn(M, max_numbers)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise TypeError(t("return a pair (B, A), got {kind}", kind=type(out).__name__))
        B, A = (np.asarray(f, dtype=float) for f in out)
        if B.ndim != 2 or A.ndim != 2 or B.shape[0] != M.shape[0] or A.shape[1] != M.shape[1]:
            raise ValueError(t("B must be (m, r) = ({m}, r) and A (r, n) = (r, {n}); got B {B}, A {A}",
                               m=M.shape[0], n=M.shape[1], B=B.shape, A=A.shape))
        return B @ A
    return product


def check_factors_for_budget(fn, hidden: bool = False) -> CheckResult:
    """`fn(M, max_numbers)` must return (B, A): B (m, r) = U_r Σ_r and A (r, n) = V_rᵀ for the
    largest r with r·(m + n) ≤ max_numbers (at most min(m, n)). The check multiplies B @ A."""
    cases = _budget_cases([(4, 10, 45, 1), (20, 10, 100, 2), (12, 12, 24, 3), (30, 20, 260, 4)])
    more = _budget_cases([(9, 7, 47, 5), (40, 5, 500, 6), (6, 16, 66, 7)]) if hidden else []
    mistakes = [
        Mistake(lambda M, k: _svd_approx(M, min(k // (2 * M.shape[1]), *M.shape)),
                "2·r·n counts a square matrix; B has m·r entries and A r·n, so r·(m + n) must fit"),
        Mistake(lambda M, k: _svd_approx(M, min(k // sum(M.shape) + 1, *M.shape)),
                "that r needs more numbers than max_numbers; the largest r that fits is "
                "max_numbers // (m + n)"),
        Mistake(lambda M, k: _svd_approx(M, min(k // (M.shape[0] * M.shape[1]) + 1, *M.shape)),
                "r comes from the factors' size r·(m + n), not from the matrix's m·n"),
        Mistake(lambda M, k: _svd_approx(M, _budget_rank(*M.shape, k), smallest=True),
                "you kept the r smallest singular values; np.linalg.svd sorts them largest first"),
    ]
    return run_cases("factors_for_budget", _factor_product(fn), cases, mistakes, hidden=more)
