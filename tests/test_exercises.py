"""The checker framework turns every learner mistake into a message, never a traceback."""

import numpy as np
import pytest

from lora_lab.course.exercises import (
    NOT_DONE,
    Case,
    Mistake,
    check_value,
    combine,
    compare,
    grading,
    run_cases,
)
from lora_lab.course.exercises.start import check_factor_params

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _square(x):
    return np.asarray(x) ** 2


CASES = [Case("x=[1,2]", ([1.0, 2.0],), np.array([1.0, 4.0])), Case("x=2", (2.0,), 4.0)]


def test_reference_passes(lang, capsys):
    result = run_cases("square", _square, CASES)
    assert result.passed and result.cases == result.total == 2
    assert lang.en(capsys.readouterr().out).strip() == "✓ square: 2/2 cases"


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
def test_mistakes_become_messages(lang, fn, expected, capsys):
    result = run_cases("square", fn, CASES)
    assert not result.passed
    assert expected in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ square:")


def test_known_mistake_adds_its_hint(lang):
    mistakes = [Mistake(lambda x: np.asarray(x) + 1, "you added instead of squaring")]
    result = run_cases("square", lambda x: np.asarray(x) + 1, CASES, mistakes, show=False)
    assert "you added instead of squaring" in lang.en(result.message)


def test_a_wrong_single_number_is_not_called_a_scaling_error(lang):
    message = lang.en(check_value("n", 8, 4, show=False).message)
    assert "expected 4, got 8" in message
    assert "factor" not in message


def test_transposed_shape_hint(lang):
    assert "did you swap A and B" in lang.en(compare(np.zeros((4, 8)), np.zeros((8, 4))))


def test_check_value(lang):
    assert check_value("n", 9216, 9216, show=False).passed
    wrong = check_value("n", 8192, 9216, {8192: "add the bias"}, show=False)
    assert not wrong.passed and "add the bias" in lang.en(wrong.message)
    assert NOT_DONE in lang.en(check_value("n", None, 9216, show=False).message)


def test_factor_params_checker(lang):
    assert check_factor_params(lambda o, i, r: (o * i, r * (o + i))).passed
    assert "count B and A separately" in lang.en(
        check_factor_params(lambda o, i, r: (o * i, 2 * r * i)).message)
    assert "not r × r" in lang.en(check_factor_params(lambda o, i, r: (o * i, r * r)).message)


def test_a_forgotten_return_is_named(lang):
    result = run_cases("square", lambda x: None, CASES, show=False)
    assert "returned None — did you forget `return`?" in lang.en(result.message)


# --- hidden cases, and how a result scores under nbgrader ----------------------------------------

HIDDEN = [Case("x=5", (5.0,), 25.0), Case("x=-3", (-3.0,), 9.0)]


def test_hidden_cases_count_after_the_visible_ones(lang, capsys):
    result = run_cases("square", _square, CASES, hidden=HIDDEN)
    assert (result.passed, result.cases, result.total, result.hidden) == (True, 4, 4, 2)
    assert lang.en(capsys.readouterr().out).strip() == "✓ square: 4/4 cases (2 hidden)"


def test_an_answer_that_special_cases_the_visible_cases_fails_the_hidden_ones(lang):
    def cheat(x):
        return 4.0 if np.ndim(x) == 0 else np.array([1.0, 4.0])  # right on the visible x=2 and [1, 2] only

    result = run_cases("square", cheat, CASES, hidden=HIDDEN, show=False)
    assert not result.passed and result.cases == 2 and result.fraction == 0.5
    assert lang.en(result.message) == "✗ square: hidden case x=5: expected 25, got 4"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"cases": []}, ValueError, "cases must hold at least one Case"),
    ({"cases": "x=1"}, TypeError, "cases must be a sequence of Case"),
    ({"cases": CASES, "hidden": [1]}, TypeError, "hidden must be a sequence of Case"),
    ({"cases": CASES, "name": ""}, TypeError, "name must be a non-empty str"),
])
def test_run_cases_checks_its_arguments(kwargs, error, match):
    kwargs = dict(kwargs)  # one parameter dict serves both languages' runs: pop from a copy
    with pytest.raises(error, match=match):
        run_cases(kwargs.pop("name", "square"), _square, **kwargs)


def test_combine_joins_results(lang):
    ok = run_cases("a", _square, CASES, show=False)
    bad = run_cases("b", _stub, CASES, hidden=HIDDEN, show=False)
    both = combine("square", ok, bad, show=False)
    assert (both.passed, both.cases, both.total, both.hidden) == (False, 2, 6, 2)
    assert lang.en(both.message) == f"✗ square: {NOT_DONE}"
    assert lang.en(combine("square", ok, ok, show=False).message) == "✓ square: 4/4 cases"
    with pytest.raises(TypeError, match="results must be one or more CheckResult"):
        combine("square", "✓")


def _shown(result) -> str | None:
    """What IPython shows as the cell's result: None for nothing, else its text/plain."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(result)
    return data.get("text/plain")


def test_self_study_displays_nothing(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert _shown(run_cases("square", _stub, CASES, show=False)) is None
    assert _shown(run_cases("square", _square, CASES, show=False)) is None


def test_under_nbgrader_a_failed_check_displays_its_score(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setattr(grading, "current_cell_source", lambda: "# points: 3\ncheck(f)")
    half = run_cases("square", lambda x: np.asarray(x) ** 2 if np.ndim(x) else 0, CASES, show=False)
    assert _shown(half) == "1.5"
    assert _shown(run_cases("square", _stub, CASES, show=False)) == "0"
    assert _shown(run_cases("square", _square, CASES, show=False)) is None  # nbgrader: full points
    third = run_cases("square", _square, CASES, hidden=[Case("x=1", (1.0,), 2.0)], show=False)
    assert _shown(third) == "2"  # 3 × 2/3, rounded down
    monkeypatch.setattr(grading, "current_cell_source", lambda: None)
    assert _shown(half) == "0"  # points unknown: a check that did not pass never scores


def test_points_lines_and_fractions():
    assert grading.points_in("check(f)") == 1.0 and grading.points_in("# points: 2.5\ncheck(f)") == 2.5
    assert grading.points_in("<!-- points: 4 -->\nWhy?") == 4.0
    with pytest.raises(ValueError, match="at most once"):
        grading.points_in("# points: 1\n# points: 2")
    with pytest.raises(TypeError, match="source must be a str"):
        grading.points_in(None)
    assert grading.fraction(False, 3, 3) == 2 / 3  # failed on a property after every case
    assert grading.fraction(True, 0, 3) == 1.0 and grading.fraction(False, 0, 0) == 0.0
    assert grading.score(False, 2, 3, "# points: 1") == 0.66


def test_a_learners_warnings_and_stderr_stay_out_of_stderr(capsys):
    import sys
    import warnings

    def noisy(x):
        warnings.warn("deprecated", DeprecationWarning, stacklevel=2)
        print("debug", file=sys.stderr)
        return _square(x)

    assert run_cases("square", noisy, CASES).passed
    out = capsys.readouterr()
    assert out.err == "" and "debug" in out.out
