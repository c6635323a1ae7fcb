"""Checkers for notebook 02: the best rank-r approximation, the saving of rank-r factors, and the
smallest rank that keeps a share of the energy."""

from __future__ import annotations

import numpy as np

from lora_lab.course.exercises import Case, CheckResult, Mistake, run_cases


def _matrix(m: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, n))


def _svd_approx(M, r: int, smallest: bool = False) -> np.ndarray:
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    idx = np.arange(S.size - r, S.size) if smallest else np.arange(r)
    return (U[:, idx] * S[idx]) @ Vt[idx]  # (m, r) @ (r, n)


def check_best_rank_r(fn) -> CheckResult:
    """`fn(M, r)` must return the best rank-r approximation of M (m, n) -> (m, n)."""
    # r >= 2 first: a rank-1 mistake is a constant multiple, which hides the hint behind "off by a factor"
    shapes = [(8, 5, 2, 1), (6, 6, 3, 0), (5, 9, 3, 2), (6, 6, 1, 4), (7, 7, 7, 3)]
    cases = [Case(f"M {m}×{n}, r={r}", (_matrix(m, n, s), r), _svd_approx(_matrix(m, n, s), r))
             for m, n, r, s in shapes]

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
    return run_cases("best_rank_r", fn, cases, mistakes)


def check_compression_ratio(fn) -> CheckResult:
    """`fn(m, n, r)` must return m·n / (r·(m + n)): how many times fewer numbers B and A store."""
    shapes = [(1024, 1024, 4), (600, 512, 20), (768, 3072, 8), (12288, 12288, 4), (10, 4, 1)]
    cases = [Case(f"m={m}, n={n}, r={r}", (m, n, r), m * n / (r * (m + n))) for m, n, r in shapes]
    mistakes = [
        Mistake(lambda m, n, r: r * (m + n) / (m * n),
                "upside down: divide the matrix's m·n entries by the factors' r·(m + n), not the reverse"),
        Mistake(lambda m, n, r: m * n / (2 * r * n), "2·r·n holds only for square matrices; the factors are "
                                                      "(m × r) and (r × n)"),
        Mistake(lambda m, n, r: m * n / (r * (m + n + 1)),
                "B = U_r·Σ_r absorbs the singular values, so there are no r extra numbers to store"),
        Mistake(lambda m, n, r: m * n / (r * r), "r × r is only the size of Σ_r, not of the factors"),
    ]
    return run_cases("compression_ratio", fn, cases, mistakes)


def _rank_for(S, keep: float) -> int:
    shares = np.cumsum(np.asarray(S, float) ** 2) / np.sum(np.asarray(S, float) ** 2)
    return int(np.searchsorted(shares, keep - 1e-12) + 1)


def check_rank_for_energy(fn) -> CheckResult:
    """`fn(S, keep)` must return the smallest r whose top-r singular values keep `keep` of Σσ²."""
    spectra = [([1.0, 1.0, 1.0, 1.0], 0.5), ([7.03, 3.0, 2.15], 0.9), ([10.0, 1.0, 0.5, 0.1], 0.9),
               ([5.0, 4.0, 3.0, 2.0, 1.0], 0.9), (list(np.geomspace(1, 1e-3, 30)), 0.99), ([3.0, 1.0], 1.0)]
    cases = [Case(f"S={np.round(S[:5], 3).tolist()}{'…' if len(S) > 5 else ''}, keep={k}", (np.array(S), k),
                  _rank_for(S, k)) for S, k in spectra]

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
    return run_cases("rank_for_energy", fn, cases, mistakes)
