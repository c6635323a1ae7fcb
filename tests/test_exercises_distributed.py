"""Scale-out checkers accept the reference answers and reject known mistakes with teaching hints."""

import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.distributed import check_grad_bytes, check_ring_traffic
from lora_lab.maths.scale import grad_bytes_per_step, ring_allreduce_bytes


def _todo(*args):
    raise NotImplementedError()


REFERENCES = {
    check_grad_bytes: lambda n, b: n * b,
    check_ring_traffic: lambda p, n: 2 * (n - 1) / n * p,
}


@pytest.mark.parametrize("checker", list(REFERENCES), ids=lambda c: c.__name__)
def test_reference_passes(checker, capsys):
    result = checker(REFERENCES[checker])
    assert result.passed and result.cases == result.total
    assert capsys.readouterr().out.startswith("✓")


def test_package_functions_pass_the_checkers():
    """The notebook's answers and lora_lab.maths.scale agree."""
    assert check_grad_bytes(grad_bytes_per_step).passed
    assert check_ring_traffic(ring_allreduce_bytes).passed


@pytest.mark.parametrize("checker", list(REFERENCES), ids=lambda c: c.__name__)
def test_unfinished_exercise_says_not_done(checker):
    result = checker(_todo)
    assert not result.passed and NOT_DONE in result.message


@pytest.mark.parametrize(("checker", "wrong", "hint"), [
    (check_grad_bytes, lambda n, b: n, "parameter count"),
    (check_grad_bytes, lambda n, b: 8 * n * b, "counts bits"),
    (check_grad_bytes, lambda n, b: 2 * n * b, "each gradient once"),
    (check_grad_bytes, lambda n, b: n * b / 1e6, "in bytes, not MB"),
    (check_ring_traffic, lambda p, n: 2 * p, "keeps its own 1/N chunk"),
    (check_ring_traffic, lambda p, n: (n - 1) / n * p, "that is one phase"),
    (check_ring_traffic, lambda p, n: (n - 1) * p, "whole payload to every other rank"),
    (check_ring_traffic, lambda p, n: 2 * (n - 1) * p, "chunk of payload/N"),
])
def test_known_mistakes_get_their_hint(checker, wrong, hint, capsys):
    result = checker(wrong)
    assert not result.passed and hint in result.message
    assert capsys.readouterr().out.startswith("✗")


@pytest.mark.parametrize("checker", list(REFERENCES), ids=lambda c: c.__name__)
def test_a_crash_becomes_a_message(checker):
    result = checker(lambda *args: 1 / 0)
    assert not result.passed and "ZeroDivisionError" in result.message


def test_not_a_function():
    assert not check_ring_traffic(42).passed
