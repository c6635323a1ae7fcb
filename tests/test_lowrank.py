"""lowrank: the truncated SVD, Eckart–Young, energy, numerical rank and the photograph demo."""

import numpy as np
import pytest

from lora_lab.maths import lowrank as lr

SHAPES = [(6, 4), (4, 6), (7, 7), (30, 12), (1, 5)]


def _rand(m, n, seed=0):
    return np.random.default_rng(seed).standard_normal((m, n))


@pytest.mark.parametrize(("m", "n"), SHAPES)
def test_truncated_svd_shapes_and_orthonormality(m, n):
    r = min(m, n)
    U, S, Vt = lr.truncated_svd(_rand(m, n), r)
    assert (U.shape, S.shape, Vt.shape) == ((m, r), (r,), (r, n))
    np.testing.assert_allclose(U.T @ U, np.eye(r), atol=1e-12)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(r), atol=1e-12)
    assert (np.diff(S) <= 0).all()


@pytest.mark.parametrize(("m", "n"), SHAPES)
def test_low_rank_approx_agrees_with_an_independent_svd(m, n):
    """Against a rank-r sum of outer products σ_i u_i v_iᵀ from scipy-free eigendecomposition."""
    M = _rand(m, n, seed=1)
    evals, V = np.linalg.eigh(M.T @ M)  # right singular vectors, ascending eigenvalues
    order = np.argsort(evals)[::-1]
    for r in range(1, min(m, n) + 1):
        v = V[:, order[:r]]  # (n, r)
        expected = M @ v @ v.T  # projection of the rows onto the top-r right singular subspace
        np.testing.assert_allclose(lr.low_rank_approx(M, r), expected, atol=1e-9)
        assert np.linalg.matrix_rank(lr.low_rank_approx(M, r)) == r


@pytest.mark.parametrize(("m", "n"), SHAPES)
def test_approx_error_is_the_tail_of_the_singular_values(m, n):
    M = _rand(m, n, seed=2)
    S = np.linalg.svd(M, compute_uv=False)
    for r in range(1, min(m, n) + 1):
        assert lr.approx_error(M, r) == pytest.approx(np.sqrt(np.sum(S[r:] ** 2)), abs=1e-10)


def test_eckart_young_beats_other_rank_r_matrices():
    M, r = _rand(12, 9, seed=3), 3
    best = lr.approx_error(M, r)
    rng = np.random.default_rng(4)
    for _ in range(50):
        Q, _ = np.linalg.qr(rng.standard_normal((12, r)))  # a random r-dim column space: (12, r)
        assert np.linalg.norm(M - Q @ Q.T @ M) >= best - 1e-12


def test_energy_and_rank_for_energy():
    shares = lr.energy([2.0, 1.0, 1.0])
    np.testing.assert_allclose(shares, [4 / 6, 5 / 6, 1.0])
    assert lr.rank_for_energy([1.0, 1.0, 1.0, 1.0], 0.5) == 2  # exactly 0.5 counts
    assert lr.rank_for_energy([7.03, 3.0, 2.15], 0.9) == 2
    assert lr.rank_for_energy([3.0, 1.0], 1.0) == 2


def test_relative_error_squared_is_one_minus_energy():
    M = _rand(9, 7, seed=5)
    S = np.linalg.svd(M, compute_uv=False)
    demo = lr.LowRankImage(M)
    for r in range(1, 7):
        assert demo.relative_error(r) ** 2 == pytest.approx(1 - lr.energy(S)[r - 1], abs=1e-12)


def test_numerical_rank():
    M = lr.with_singular_values([5.0, 2.0, 1e-3], 6, 5)
    assert lr.numerical_rank(M) == 3
    assert lr.numerical_rank(M, tol=0.01) == 2
    assert lr.numerical_rank(np.outer([1, 2, 3], [4, 5])) == 1


def test_with_singular_values_is_exact():
    M = lr.with_singular_values([7.03, 3, 2.15], 5, 4, seed=1)
    np.testing.assert_allclose(np.linalg.svd(M, compute_uv=False), [7.03, 3, 2.15, 0], atol=1e-12)


def test_factor_counts():
    assert lr.factor_params(1024, 1024, 4) == 8192
    assert lr.compression_ratio(1024, 1024, 4) == pytest.approx(128.0)
    assert lr.compression_ratio(600, 512, 20) == pytest.approx(600 * 512 / (20 * 1112))


def test_planted_low_rank_shows_its_rank_in_the_spectrum():
    M, signal = lr.planted_low_rank(64, 48, 4, noise=0.05, seed=0)
    S = np.linalg.svd(M, compute_uv=False)
    assert np.linalg.matrix_rank(signal) == 4
    assert S[3] / S[4] > 5  # a clear gap after the planted rank
    assert lr.numerical_rank(M) == 48  # noise makes it full rank in exact terms
    S_out, rel, rel_signal = lr.planted_errors(M, signal, 4)
    np.testing.assert_allclose(S_out, S)
    # keeping the planted rank removes noise: M_4 is closer to the signal than M is
    assert rel_signal < np.linalg.norm(M - signal) / np.linalg.norm(signal)


def test_low_rank_image_matches_direct_computation():
    M = _rand(20, 15, seed=6)
    demo = lr.LowRankImage(M)
    for r in (1, 4, 15):
        view = demo.at_rank(r)
        np.testing.assert_allclose(view.image, lr.low_rank_approx(M, r), atol=1e-10)
        assert view.relative_error == pytest.approx(lr.approx_error(M, r) / np.linalg.norm(M), abs=1e-12)
        assert view.compression == pytest.approx(300 / (r * 35))


def test_photo_is_grayscale_in_unit_range():
    photo = lr.load_photo()
    assert photo.shape == (600, 512)
    assert 0.0 <= photo.min() < 0.1 and 0.9 < photo.max() <= 1.0 + 1e-12
    assert lr.grayscale(np.full((2, 2, 3), 255, dtype=np.uint8)) == pytest.approx(np.ones((2, 2)))


GOOD = np.ones((4, 3))


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: lr.truncated_svd(np.ones(5), 1), ValueError, "M must be 2-D"),
    (lambda: lr.truncated_svd(np.ones((2, 2, 2)), 1), ValueError, "M must be 2-D"),
    (lambda: lr.low_rank_approx([[1.0, np.nan]], 1), ValueError, "M must be finite"),
    (lambda: lr.low_rank_approx("abc", 1), TypeError, "M must be a 2-D array"),
    (lambda: lr.low_rank_approx(np.zeros((0, 3)), 1), ValueError, "M must not be empty"),
    (lambda: lr.low_rank_approx(GOOD, 0), ValueError, r"r must be an integer in \[1, .*\]=\[1, 3\], got 0"),
    (lambda: lr.approx_error(GOOD, 4), ValueError, r"r must be .*=\[1, 3\], got 4"),
    (lambda: lr.approx_error(GOOD, 1.5), TypeError, "r must be an integer"),
    (lambda: lr.truncated_svd(GOOD, True), TypeError, "r must be an integer"),
    (lambda: lr.energy([1.0, 2.0]), ValueError, "S must be sorted largest first"),
    (lambda: lr.energy([[1.0]]), ValueError, "S must be a non-empty 1-D array"),
    (lambda: lr.energy([0.0, 0.0]), ValueError, "S must have a positive singular value"),
    (lambda: lr.energy([1.0, -1.0]), ValueError, "S must hold finite, non-negative"),
    (lambda: lr.rank_for_energy([1.0], 1.5), ValueError, r"keep must be a number in \(0, 1\]"),
    (lambda: lr.numerical_rank(GOOD, tol=-1), ValueError, "tol must be a finite number >= 0"),
    (lambda: lr.factor_params(0, 3, 1), ValueError, r"m must be an integer in \[1, inf\]"),
    (lambda: lr.planted_low_rank(8, 6, 7), ValueError, r"rank must be an integer in .*=\[1, 6\]"),
    (lambda: lr.planted_low_rank(8, 6, 2, noise=-0.1), ValueError, "noise must be a finite number >= 0"),
    (lambda: lr.planted_errors(GOOD, np.ones((3, 4)), 1), ValueError, "signal must have the shape of M"),
    (lambda: lr.with_singular_values([1, 2, 3, 4], 4, 3), ValueError, r"S must be 1-D.*min\(m, n\)=3"),
    (lambda: lr.LowRankImage(GOOD).reconstruct(5), ValueError, r"r must be .*=\[1, 3\], got 5"),
    (lambda: lr.grayscale(np.ones((4, 4))), ValueError, r"rgb must have shape \(h, w, 3\)"),
])
def test_bad_inputs_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
