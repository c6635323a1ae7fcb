"""Budget checkers accept the reference answers and reject known mistakes with teaching hints."""

import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.budget import (
    check_adapter_megabytes,
    check_lora_params,
    check_task_storage,
    check_training_bytes,
)

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _todo(*args):
    raise NotImplementedError()


REFERENCES = {
    check_lora_params: lambda n, shapes, r: n * sum(r * (o + i) for o, i in shapes),
    check_adapter_megabytes: lambda n, b: n * b / 1e6,
    check_training_bytes: lambda n, t, w, g, s: n * w + t * (g + s),
    check_task_storage: lambda n, m, a: (n * m, m + n * a),
}


@pytest.mark.parametrize("checker", list(REFERENCES), ids=lambda c: c.__name__)
def test_reference_passes(lang, checker, capsys):
    result = checker(REFERENCES[checker])
    assert result.passed and result.cases == result.total == 4
    assert lang.en(capsys.readouterr().out).startswith("✓")


@pytest.mark.parametrize("checker", list(REFERENCES), ids=lambda c: c.__name__)
def test_unfinished_exercise_says_not_done(lang, checker):
    result = checker(_todo)
    assert not result.passed and NOT_DONE in lang.en(result.message)


@pytest.mark.parametrize(("checker", "wrong", "hint"), [
    (check_lora_params, lambda n, s, r: n * sum(2 * r * i for _, i in s), "only holds for square"),
    (check_lora_params, lambda n, s, r: sum(r * (o + i) for o, i in s), "number of layers"),
    (check_lora_params, lambda n, s, r: n * sum(r * i for _, i in s), "count both factors"),
    (check_lora_params, lambda n, s, r: n * sum(r * o * i for o, i in s), "is not a parameter count"),
    (check_adapter_megabytes, lambda n, b: n / 1e6, "millions of parameters, not megabytes"),
    (check_adapter_megabytes, lambda n, b: n * b / 2**20, "that is MiB"),
    (check_adapter_megabytes, lambda n, b: n * b * 8 / 1e6, "counts bits"),
    (check_training_bytes, lambda n, t, w, g, s: n * (w + g + s), "frozen weights have no gradient"),
    (check_training_bytes, lambda n, t, w, g, s: t * (w + g + s), "still sit in memory"),
    (check_training_bytes, lambda n, t, w, g, s: n * w + t * g, "two states"),
    (check_task_storage, lambda n, m, a: (n * m, n * (m + a)), "ONE copy of the base"),
    (check_task_storage, lambda n, m, a: (n * m, n * a), "cannot run"),
    (check_task_storage, lambda n, m, a: (m, m + n * a), "whole model for every task"),
])
def test_known_mistakes_get_their_hint(lang, checker, wrong, hint):
    result = checker(wrong)
    assert not result.passed and hint in lang.en(result.message)


def test_a_crash_becomes_a_message(lang):
    result = check_lora_params(lambda n, shapes, r: shapes[5])
    assert not result.passed and "raised IndexError" in lang.en(result.message)
