"""The checkers of 06_experiments accept the reference and teach on known mistakes."""

from lora_lab.course.exercises.experiments import check_adam_state_bytes, check_lora_trainable


def test_lora_trainable_checker():
    assert check_lora_trainable(lambda b, d, t, r, c: b * t * r * 2 * d + (d + 1) * c).passed
    assert "new head trains too" in check_lora_trainable(lambda b, d, t, r, c: b * t * 2 * r * d).message
    assert "has a bias" in check_lora_trainable(lambda b, d, t, r, c: b * t * 2 * r * d + d * c).message
    no_blocks = check_lora_trainable(lambda b, d, t, r, c: t * 2 * r * d + (d + 1) * c)
    assert "number of blocks" in no_blocks.message
    assert "both factors" in check_lora_trainable(lambda b, d, t, r, c: b * t * r * d + (d + 1) * c).message


def test_adam_state_bytes_checker():
    assert check_adam_state_bytes(lambda n, b: 2 * n * b).passed
    assert "two running averages" in check_adam_state_bytes(lambda n, b: n * b).message
    assert "gradient is not optimizer state" in check_adam_state_bytes(lambda n, b: 3 * n * b).message
    assert "bytes per value" in check_adam_state_bytes(lambda n, b: 2 * n).message


def test_unfinished_exercise_says_not_done():
    def stub(n, b):
        raise NotImplementedError()

    assert "not done yet" in check_adam_state_bytes(stub).message
