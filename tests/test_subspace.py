"""φ equals its definition cell by cell, ignores what it should, and amplification matches a
constructed example."""

import numpy as np
import pytest
import torch

from lora_lab.maths.subspace import (
    amplification,
    phi_readout,
    phi_summary,
    random_baseline,
    row_space_basis,
    subspace_similarity,
)


def _naive(A1, A2):
    """φ straight from the formula: an SVD of each matrix for every cell."""
    phi = np.empty((A1.shape[0], A2.shape[0]))
    for i in range(1, A1.shape[0] + 1):
        for j in range(1, A2.shape[0] + 1):
            U1 = np.linalg.svd(A1)[2][:i].T  # (d_in, i): right singular vectors
            U2 = np.linalg.svd(A2)[2][:j].T  # (d_in, j)
            phi[i - 1, j - 1] = np.linalg.norm(U1.T @ U2) ** 2 / min(i, j)
    return phi


@pytest.mark.parametrize(("r1", "r2", "d_in"), [(3, 5, 7), (4, 4, 16), (8, 2, 9), (1, 6, 6)])
def test_phi_equals_the_per_cell_definition(r1, r2, d_in):
    rng = np.random.default_rng(r1 * 100 + r2)
    A1, A2 = rng.standard_normal((r1, d_in)), rng.standard_normal((r2, d_in))
    phi = subspace_similarity(A1, A2)
    assert phi.shape == (r1, r2)
    assert np.allclose(phi, _naive(A1, A2), atol=1e-12)
    assert (phi >= 0).all() and (phi <= 1).all()


def test_torch_in_gives_the_same_as_numpy():
    A1, A2 = torch.randn(3, 10, generator=torch.Generator().manual_seed(0)), torch.randn(4, 10)
    assert np.allclose(subspace_similarity(A1, A2), subspace_similarity(A1.numpy(), A2.numpy()))


def test_phi_ignores_scale_and_orthogonal_mixing_of_rows():
    rng = np.random.default_rng(1)
    A1, A2 = rng.standard_normal((4, 12)), rng.standard_normal((6, 12))
    Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))  # orthogonal: same singular vectors
    phi = subspace_similarity(A1, A2)
    assert np.allclose(subspace_similarity(-3.5 * A1, 1e-3 * A2), phi)
    assert np.allclose(subspace_similarity(Q @ A1, A2), phi)
    assert np.allclose(subspace_similarity(A1[::-1], A2), phi)  # a permutation is orthogonal too


def test_any_invertible_mixing_keeps_the_full_row_space():
    """A general invertible M changes which direction comes first, so only the cells that use
    all r1 directions (i = r1) are unchanged: they compare the whole row space."""
    rng = np.random.default_rng(2)
    A1, A2 = rng.standard_normal((4, 12)), rng.standard_normal((6, 12))
    M = rng.standard_normal((4, 4)) + 4 * np.eye(4)
    phi, mixed = subspace_similarity(A1, A2), subspace_similarity(M @ A1, A2)
    assert np.allclose(mixed[-1], phi[-1])
    assert not np.allclose(mixed[0], phi[0])


def test_identical_inputs_give_ones_on_the_diagonal():
    A = np.random.default_rng(3).standard_normal((6, 20))
    phi = subspace_similarity(A, A)
    assert np.allclose(np.diag(phi), 1.0)
    assert np.allclose(phi, 1.0)  # the top-i directions sit inside the top-j ones, or the reverse


def test_orthogonal_row_spaces_give_zeros():
    Q, _ = np.linalg.qr(np.random.default_rng(4).standard_normal((10, 10)))
    assert np.allclose(subspace_similarity(Q[:3], Q[3:8]), 0.0)


def test_nested_subspaces_give_one_where_the_smaller_fits():
    rng = np.random.default_rng(5)
    A64 = rng.standard_normal((8, 30))
    A8 = rng.standard_normal((2, 8)) @ A64  # its row space lies inside A64's
    assert np.isclose(subspace_similarity(A8, A64)[-1, -1], 1.0)


def test_random_subspaces_average_the_baseline():
    rng = np.random.default_rng(6)
    phis = [subspace_similarity(rng.standard_normal((4, 50)), rng.standard_normal((8, 50)))
            for _ in range(400)]
    assert np.allclose(np.mean(phis, axis=0), random_baseline(4, 8, 50), atol=0.02)
    assert random_baseline(2, 3, 10).tolist() == [[0.1, 0.2, 0.3], [0.2, 0.2, 0.3]]


@pytest.mark.parametrize(("A1", "A2", "error", "match"), [
    (np.eye(2, 5), np.eye(2, 6), ValueError, r"A1 and A2 must share d_in .*\(\.\.\., 5\).*\(\.\.\., 6\)"),
    (np.full((2, 3), np.nan), np.ones((2, 3)), ValueError, "A1 must be finite"),
    (np.eye(3), [[np.inf, 0, 0]], ValueError, "A2 must be finite"),
    (np.ones(5), np.ones((2, 5)), ValueError, "A1 must be 2-D"),
    (np.ones((6, 4)), np.ones((2, 4)), ValueError, "at most d_in=4 rows"),
    (np.zeros((2, 4)), np.eye(4), ValueError, "rank is 0 < r=2"),
    (np.array([[1.0, 2, 3], [2, 4, 6]]), np.eye(3), ValueError, "linearly independent rows"),
    ("A", np.eye(3), TypeError, "A1 must be a 2-D array or tensor"),
])
def test_bad_input_is_refused(A1, A2, error, match):
    with pytest.raises(error, match=match):
        subspace_similarity(A1, A2)


def test_row_space_basis_is_orthonormal():
    V = row_space_basis(np.random.default_rng(7).standard_normal((3, 9)))
    assert np.allclose(V @ V.T, np.eye(3))


def _constructed(r=2, d=12):
    """W = diag(10, 9, …) strong on the first axes; ΔW lives on the last r axes, where W is weak."""
    s = np.linspace(10, 1, d)
    W = np.diag(s)
    dW = np.zeros((d, d))
    dW[-r:, -r:] = np.diag([3.0, 4.0][:r])
    return W, dW, s


def test_amplification_on_a_constructed_example():
    W, dW, s = _constructed()
    out = amplification(W, dW, r=2)
    assert out["r"] == 2
    assert np.isclose(out["proj_delta"], np.linalg.norm(s[-2:]))      # W's weakest two values
    assert np.isclose(out["proj_W"], np.linalg.norm(s[:2]))           # W's strongest two values
    assert np.isclose(out["norm_W"], np.linalg.norm(s)) and np.isclose(out["norm_delta"], 5.0)
    assert np.isclose(out["factor"], 5.0 / np.linalg.norm(s[-2:]))
    assert out["proj_random"] < out["proj_W"]


def test_amplification_of_a_delta_along_w_is_small():
    W, _, s = _constructed()
    along = np.zeros_like(W)
    along[0, 0] = 2.0  # ΔW on W's strongest direction: nothing is amplified
    out = amplification(W, along, r=1)
    assert np.isclose(out["proj_delta"], s[0]) and np.isclose(out["factor"], 2.0 / s[0])


def test_amplification_random_column_is_seeded():
    W, dW, _ = _constructed()
    assert amplification(W, dW, 2, seed=1) == amplification(W, dW, 2, seed=1)
    assert amplification(W, dW, 2, seed=1)["proj_random"] != amplification(W, dW, 2, seed=2)["proj_random"]


@pytest.mark.parametrize(("W", "dW", "r", "error", "match"), [
    (np.eye(4), np.eye(3), 1, ValueError, "same shape"),
    (np.eye(4), np.zeros((4, 4)), 1, ValueError, "delta_W is all zeros"),
    (np.eye(4), np.eye(4), 5, ValueError, r"r must be an integer in \[1, min\(d_in, d_out\)\]=\[1, 4\]"),
    (np.eye(4), np.eye(4), 1.5, TypeError, "r must be an integer"),
    (np.eye(4), np.full((4, 4), np.nan), 1, ValueError, "delta_W must be finite"),
])
def test_amplification_bad_input(W, dW, r, error, match):
    with pytest.raises(error, match=match):
        amplification(W, dW, r)


def test_phi_summary_and_readout():
    phi = np.array([[0.9, 0.5], [0.4, 0.3]])
    s = phi_summary(phi, d_in=4)
    assert s["top"] == 0.9 and np.isclose(s["mean"], 0.525)
    assert s["random_mean"] == 0.4375  # the mean of max(i, j) / 4: 1/4, 2/4, 2/4, 2/4
    assert phi_readout(phi, 4) == ("φ(1, 1) = 0.900 · mean φ over the 2×2 grid = 0.525 "
                                   "(random subspaces: 0.438)")
    with pytest.raises(ValueError, match="phi must be a non-empty 2-D grid"):
        phi_summary(np.ones(3), 4)
