"""The checkers of 06_experiments accept the reference and teach on known mistakes."""

import pytest

from lora_lab.course.exercises.experiments import check_adam_state_bytes, check_lora_trainable

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def test_lora_trainable_checker(lang):
    assert check_lora_trainable(lambda b, d, t, r, c: b * t * r * 2 * d + (d + 1) * c).passed
    assert "new head trains too" in lang.en(
        check_lora_trainable(lambda b, d, t, r, c: b * t * 2 * r * d).message)
    assert "has a bias" in lang.en(
        check_lora_trainable(lambda b, d, t, r, c: b * t * 2 * r * d + d * c).message)
    no_blocks = check_lora_trainable(lambda b, d, t, r, c: t * 2 * r * d + (d + 1) * c)
    assert "number of blocks" in lang.en(no_blocks.message)
    assert "both factors" in lang.en(
        check_lora_trainable(lambda b, d, t, r, c: b * t * r * d + (d + 1) * c).message)


def test_adam_state_bytes_checker(lang):
    assert check_adam_state_bytes(lambda n, b: 2 * n * b).passed
    assert "two running averages" in lang.en(check_adam_state_bytes(lambda n, b: n * b).message)
    assert "gradient is not optimizer state" in lang.en(
        check_adam_state_bytes(lambda n, b: 3 * n * b).message)
    assert "bytes per value" in lang.en(check_adam_state_bytes(lambda n, b: 2 * n).message)


def test_unfinished_exercise_says_not_done(lang):
    def stub(n, b):
        raise NotImplementedError()

    assert "not done yet" in lang.en(check_adam_state_bytes(stub).message)
