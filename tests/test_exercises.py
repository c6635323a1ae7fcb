"""The checker framework turns every learner mistake into a message, never a traceback."""

import numpy as np
import pytest

from lora_lab.course.exercises import NOT_DONE, Case, Mistake, check_value, compare, run_cases
from lora_lab.course.exercises.start import check_factor_params


def _square(x):
    return np.asarray(x) ** 2


CASES = [Case("x=[1,2]", ([1.0, 2.0],), np.array([1.0, 4.0])), Case("x=2", (2.0,), 4.0)]


def test_reference_passes(capsys):
    result = run_cases("square", _square, CASES)
    assert result.passed and result.cases == result.total == 2
    assert capsys.readouterr().out.strip() == "✓ square: 2/2 cases"


def _stub(x):
    raise NotImplementedError()


@pytest.mark.parametrize(("fn", "expected"), [
    (_stub, NOT_DONE),
    (lambda x: 1 / 0, "raised ZeroDivisionError"),
    (lambda x: "four", "expected a number or an array, got str"),
    (lambda x: np.asarray(x) * np.nan, "NaN"),
    (lambda x: 2 * np.asarray(x) ** 2, "off by a factor 2"),
    (lambda x: np.zeros((2, 2)), "expected shape (2,)"),
    (42, "expected a function"),
])
def test_mistakes_become_messages(fn, expected, capsys):
    result = run_cases("square", fn, CASES)
    assert not result.passed
    assert expected in result.message
    assert capsys.readouterr().out.startswith("✗ square:")


def test_known_mistake_adds_its_hint():
    mistakes = [Mistake(lambda x: np.asarray(x) + 1, "you added instead of squaring")]
    result = run_cases("square", lambda x: np.asarray(x) + 1, CASES, mistakes, show=False)
    assert "you added instead of squaring" in result.message


def test_a_wrong_single_number_is_not_called_a_scaling_error():
    message = check_value("n", 8, 4, show=False).message
    assert "expected 4, got 8" in message
    assert "factor" not in message


def test_transposed_shape_hint():
    assert "did you swap A and B" in compare(np.zeros((4, 8)), np.zeros((8, 4)))


def test_check_value():
    assert check_value("n", 9216, 9216, show=False).passed
    wrong = check_value("n", 8192, 9216, {8192: "add the bias"}, show=False)
    assert not wrong.passed and "add the bias" in wrong.message
    assert NOT_DONE in check_value("n", None, 9216, show=False).message


def test_factor_params_checker():
    assert check_factor_params(lambda o, i, r: (o * i, r * (o + i))).passed
    assert "count B and A separately" in check_factor_params(lambda o, i, r: (o * i, 2 * r * i)).message
    assert "not r × r" in check_factor_params(lambda o, i, r: (o * i, r * r)).message


def test_a_forgotten_return_is_named():
    result = run_cases("square", lambda x: None, CASES, show=False)
    assert "returned None — did you forget `return`?" in result.message
