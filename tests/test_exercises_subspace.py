"""The checkers of 07_subspace_similarity accept the reference and teach on known mistakes."""

import numpy as np

from lora_lab.course.exercises.subspace import (
    check_amplification_factor,
    check_phi_cell,
    check_top_directions,
)


def _phi(A1, A2, i, j):
    V1, V2 = np.linalg.svd(A1)[2][:i].T, np.linalg.svd(A2)[2][:j].T
    return np.linalg.norm(V1.T @ V2) ** 2 / min(i, j)


def test_phi_cell_checker():
    assert check_phi_cell(_phi).passed
    left = check_phi_cell(lambda A1, A2, i, j: np.linalg.norm(
        np.linalg.svd(A1)[0][:, :i].T @ np.linalg.svd(A2)[0][:, :j]) ** 2 / min(i, j))
    assert "left singular vectors" in left.message
    assert "divide by min(i, j)" in check_phi_cell(lambda A1, A2, i, j: _phi(A1, A2, i, j) * min(i, j)
                                                  / max(i, j)).message
    assert "raw rows" in check_phi_cell(lambda A1, A2, i, j: np.linalg.norm(A1[:i] @ A2[:j].T) ** 2
                                        / min(i, j)).message


def test_top_directions_checker_accepts_either_sign():
    assert check_top_directions(lambda A, i: np.linalg.svd(A, full_matrices=False)[2][:i].T).passed
    assert check_top_directions(lambda A, i: -np.linalg.svd(A, full_matrices=False)[2][:i].T).passed
    assert "not orthonormal" in check_top_directions(lambda A, i: A[:i].T).message
    assert "transpose" in check_top_directions(lambda A, i: np.linalg.svd(A)[2][:i]).message
    assert "R^d_in" in check_top_directions(lambda A, i: np.linalg.svd(A)[0][:, :i]).message


def _factor(W, dW, r):
    U, _, Vh = np.linalg.svd(dW)
    return np.linalg.norm(dW) / np.linalg.norm(U[:, :r].T @ W @ Vh[:r].T)


def test_amplification_factor_checker():
    assert check_amplification_factor(_factor).passed
    assert "upside down" in check_amplification_factor(lambda W, dW, r: 1 / _factor(W, dW, r)).message
    assert "not with all of W" in check_amplification_factor(
        lambda W, dW, r: np.linalg.norm(dW) / np.linalg.norm(W)).message

    def own(W, dW, r):
        U, _, Vh = np.linalg.svd(W)
        return np.linalg.norm(dW) / np.linalg.norm(U[:, :r].T @ W @ Vh[:r].T)

    assert "not on W's own" in check_amplification_factor(own).message
