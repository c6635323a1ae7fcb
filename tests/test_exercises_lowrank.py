"""The checkers of notebook 02 accept the reference and reject known-wrong answers with a hint."""

import numpy as np
import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.lowrank import (
    check_best_rank_r,
    check_compression_ratio,
    check_rank_for_energy,
)
from lora_lab.maths import lowrank as lr

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _stub(*args):
    raise NotImplementedError()


def _best(M, r):
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, :r] @ np.diag(S[:r]) @ Vt[:r]


def _no_sigma(M, r):
    U, _, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, :r] @ Vt[:r]


def _smallest(M, r):
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, -r:] @ np.diag(S[-r:]) @ Vt[-r:]


def _v_not_vt(M, r):
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    return U[:, :r] @ np.diag(S[:r]) @ Vt.T[:r]


def _energy_rank(S, keep):
    shares = np.cumsum(np.square(S)) / np.sum(np.square(S))
    return int(np.argmax(shares >= keep - 1e-12)) + 1


@pytest.mark.parametrize(("checker", "reference"), [
    (check_best_rank_r, _best),
    (check_best_rank_r, lr.low_rank_approx),
    (check_compression_ratio, lambda m, n, r: m * n / (r * (m + n))),
    (check_compression_ratio, lr.compression_ratio),
    (check_rank_for_energy, _energy_rank),
    (check_rank_for_energy, lr.rank_for_energy),
])
def test_checkers_accept_the_reference(lang, checker, reference, capsys):
    result = checker(reference)
    assert result.passed and result.cases == result.total
    assert lang.en(capsys.readouterr().out).startswith("✓")


@pytest.mark.parametrize(("checker", "wrong", "hint"), [
    (check_best_rank_r, _no_sigma, "Σ is missing"),
    (check_best_rank_r, _smallest, "r smallest singular values"),
    (check_best_rank_r, _v_not_vt, "already returns Vᵀ"),
    (check_best_rank_r, lambda M, r: M, "values differ"),
    (check_compression_ratio, lambda m, n, r: r * (m + n) / (m * n), "upside down"),
    (check_compression_ratio, lambda m, n, r: m * n / (2 * r * n), "only for square matrices"),
    (check_compression_ratio, lambda m, n, r: m * n / (r * (m + n + 1)), "absorbs the singular values"),
    (check_compression_ratio, lambda m, n, r: m * n / (r * r), "size of Σ_r"),
    (check_rank_for_energy, lambda S, keep: _energy_rank(np.sqrt(S), keep), "square the singular values"),
    (check_rank_for_energy, lambda S, keep: _energy_rank(S, keep) - 1, "off by one"),
    (check_rank_for_energy, lambda S, keep: min(_energy_rank(S, keep + 1e-9), len(S)), "share ≥ keep"),
])
def test_checkers_reject_known_mistakes_with_a_hint(lang, checker, wrong, hint, capsys):
    result = checker(wrong)
    assert not result.passed
    assert hint in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗")


@pytest.mark.parametrize("checker", [check_best_rank_r, check_compression_ratio, check_rank_for_energy])
def test_a_stub_is_not_done_yet(lang, checker):
    result = checker(_stub)
    assert not result.passed and NOT_DONE in lang.en(result.message)
