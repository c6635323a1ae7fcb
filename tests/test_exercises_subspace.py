"""The checkers of 07_subspace_similarity accept the reference, teach on known mistakes, and their
hidden cases catch an answer special-cased to the visible ones."""

import numpy as np
import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.subspace import (
    check_amplification_factor,
    check_phi_cell,
    check_phi_grid,
    check_top_directions,
)

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _phi(A1, A2, i, j):
    V1, V2 = np.linalg.svd(A1)[2][:i].T, np.linalg.svd(A2)[2][:j].T
    return np.linalg.norm(V1.T @ V2) ** 2 / min(i, j)


def test_phi_cell_checker(lang):
    assert check_phi_cell(_phi).passed
    left = check_phi_cell(lambda A1, A2, i, j: np.linalg.norm(
        np.linalg.svd(A1)[0][:, :i].T @ np.linalg.svd(A2)[0][:, :j]) ** 2 / min(i, j))
    assert "left singular vectors" in lang.en(left.message)
    assert "divide by min(i, j)" in lang.en(check_phi_cell(lambda A1, A2, i, j: _phi(A1, A2, i, j) * min(i, j)
                                                  / max(i, j)).message)
    assert "raw rows" in lang.en(check_phi_cell(lambda A1, A2, i, j: np.linalg.norm(A1[:i] @ A2[:j].T) ** 2
                                        / min(i, j)).message)


def test_top_directions_checker_accepts_either_sign(lang):
    assert check_top_directions(lambda A, i: np.linalg.svd(A, full_matrices=False)[2][:i].T).passed
    assert check_top_directions(lambda A, i: -np.linalg.svd(A, full_matrices=False)[2][:i].T).passed
    assert "not orthonormal" in lang.en(check_top_directions(lambda A, i: A[:i].T).message)
    assert "transpose" in lang.en(check_top_directions(lambda A, i: np.linalg.svd(A)[2][:i]).message)
    assert "R^d_in" in lang.en(check_top_directions(lambda A, i: np.linalg.svd(A)[0][:, :i]).message)


def _factor(W, dW, r):
    U, _, Vh = np.linalg.svd(dW)
    return np.linalg.norm(dW) / np.linalg.norm(U[:, :r].T @ W @ Vh[:r].T)


def test_amplification_factor_checker(lang):
    assert check_amplification_factor(_factor).passed
    assert "upside down" in lang.en(
        check_amplification_factor(lambda W, dW, r: 1 / _factor(W, dW, r)).message)
    assert "not with all of W" in lang.en(check_amplification_factor(
        lambda W, dW, r: np.linalg.norm(dW) / np.linalg.norm(W)).message)

    def own(W, dW, r):
        U, _, Vh = np.linalg.svd(W)
        return np.linalg.norm(dW) / np.linalg.norm(U[:, :r].T @ W @ Vh[:r].T)

    assert "not on W's own" in lang.en(check_amplification_factor(own).message)


def _grid(A1, A2):
    """The reference written as a learner would: one SVD per matrix, a double loop."""
    V1 = np.linalg.svd(A1, full_matrices=False)[2].T  # (d_in, r1)
    V2 = np.linalg.svd(A2, full_matrices=False)[2].T  # (d_in, r2)
    grid = np.zeros((V1.shape[1], V2.shape[1]))
    for i in range(1, V1.shape[1] + 1):
        for j in range(1, V2.shape[1] + 1):
            grid[i - 1, j - 1] = np.linalg.norm(V1[:, :i].T @ V2[:, :j]) ** 2 / min(i, j)
    return grid


def _cells(cell, A1, A2):
    return np.array([[cell(i, j) for j in range(1, len(A2) + 1)] for i in range(1, len(A1) + 1)])


def _min(r1, r2):
    return np.minimum(np.arange(1, r1 + 1)[:, None], np.arange(1, r2 + 1)[None, :])


def test_phi_grid_checker_accepts_the_reference_and_its_hidden_cases():
    visible, hidden = check_phi_grid(_grid), check_phi_grid(_grid, hidden=True)
    assert visible.passed and hidden.passed and hidden.total == visible.total + 3 == hidden.hidden + 2


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda A1, A2: _grid(A1, A2).T, "transpose"),
    (lambda A1, A2: _grid(A1, A2) * _min(len(A1), len(A2)), "divide each cell by min(i, j)"),
    (lambda A1, A2: np.sqrt(_grid(A1, A2) * _min(len(A1), len(A2))) / _min(len(A1), len(A2)),
     "square the Frobenius norm"),
    (lambda A1, A2: _cells(lambda i, j: np.linalg.norm(A1[:i] @ A2[:j].T) ** 2 / min(i, j), A1, A2),
     "raw rows"),
])
def test_phi_grid_checker_teaches_on_known_mistakes(lang, wrong, hint):
    result = check_phi_grid(wrong)
    assert not result.passed and hint in lang.en(result.message), lang.en(result.message)


def test_phi_grid_left_vectors_are_caught_where_they_fit(lang):
    def left(A1, A2):  # only computable when r1 == r2: the 4 x 4 visible case
        U1, U2 = np.linalg.svd(A1)[0], np.linalg.svd(A2)[0]
        return _cells(lambda i, j: np.linalg.norm(U1[:, :i].T @ U2[:, :j]) ** 2 / min(i, j), A1, A2)
    result = check_phi_grid(left)
    assert not result.passed and ("raised" in lang.en(result.message) or "left singular" in lang.en(
        result.message))


def _special_cased(A1, A2):
    """Right on the visible shapes only: the hidden cases must catch it."""
    return _grid(A1, A2) if A1.shape in ((3, 10), (4, 8)) else np.zeros((len(A1), len(A2)))


@pytest.mark.parametrize(("checker", "fn"), [
    (check_phi_grid, _special_cased),
    (check_phi_cell, lambda A1, A2, i, j: _phi(A1, A2, i, j) if len(A1) <= 5 and len(A2) > 3 else 0.5),
    (check_top_directions, lambda A, i: np.linalg.svd(A, full_matrices=False)[2][:i].T if A.shape[1] <= 12
     else A[:i].T / np.linalg.norm(A[:i], axis=1)),
    (check_amplification_factor, lambda W, dW, r: _factor(W, dW, r) if W.shape[0] == W.shape[1] else 1.0),
])
def test_hidden_cases_catch_special_casing(lang, checker, fn):
    assert checker(fn).passed
    result = checker(fn, hidden=True)
    assert not result.passed and "hidden case" in lang.en(result.message) and 0 < result.cases < result.total


@pytest.mark.parametrize("checker", [check_phi_grid, check_phi_cell, check_top_directions,
                                     check_amplification_factor])
def test_unfinished_crashing_and_nan_answers_become_messages(lang, checker):
    def stub(*args):
        raise NotImplementedError()

    assert NOT_DONE in lang.en(checker(stub, hidden=True).message) and checker(stub).cases == 0
    assert "ZeroDivisionError" in lang.en(checker(lambda *args: 1 / 0).message)
    nan = checker(lambda *args: np.full((3, 5), np.nan) if len(args) == 2 else float("nan"))
    assert not nan.passed and ("NaN" in lang.en(nan.message) or "shape" in lang.en(nan.message))


def test_amplification_one_sided_projection_is_explained(lang):
    def one_sided(W, dW, r):
        Vh = np.linalg.svd(dW)[2]
        return np.linalg.norm(dW) / np.linalg.norm(W @ Vh[:r].T)

    assert "both sides" in lang.en(check_amplification_factor(one_sided).message)
