"""The 08_deploy_and_switch checkers accept the reference and teach on known-wrong answers."""

import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.adapters import (
    check_adapter_bytes,
    check_extra_flops,
    check_peft_key,
    check_switch_weight,
)


def _not_done(*args):
    raise NotImplementedError()


def test_extra_flops_accepts_the_reference(capsys):
    result = check_extra_flops(lambda d_in, d_out, r, merged: 0 if merged else 2 * r * (d_in + d_out))
    assert result.passed and result.cases == result.total == 4
    assert capsys.readouterr().out.strip() == "✓ extra_flops: 4/4 cases"


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda i, o, r, m: 2 * r * (i + o), "a merged layer runs only W = W0 + ΔW"),
    (lambda i, o, r, m: 0 if m else 2 * i * o, "the cost of applying a full ΔW"),
    (lambda i, o, r, m: 0 if m else r * (i + o), "2 FLOPs per multiply-add"),
    (_not_done, NOT_DONE),
])
def test_extra_flops_teaches(fn, hint):
    result = check_extra_flops(fn)
    assert not result.passed and hint in result.message


def test_switch_weight_accepts_the_reference():
    result = check_switch_weight(lambda W, Ao, Bo, An, Bn, s: W - s * Bo @ Ao + s * Bn @ An)
    assert result.passed and result.cases == 3


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda W, Ao, Bo, An, Bn, s: W + s * Bn @ An, "subtract s·B_old A_old"),
    (lambda W, Ao, Bo, An, Bn, s: W - Bo @ Ao + Bn @ An, "each ΔW is scaling · B @ A"),
    (lambda W, Ao, Bo, An, Bn, s: W + s * Bo @ Ao - s * Bn @ An, "signs are swapped"),
    (lambda W, Ao, Bo, An, Bn, s: W - s * Bo @ Ao, "never merges the new one"),
    (lambda W, Ao, Bo, An, Bn, s: W - s * Ao @ Bo, "raised RuntimeError"),
    (_not_done, NOT_DONE),
])
def test_switch_weight_teaches(fn, hint):
    result = check_switch_weight(fn)
    assert not result.passed and hint in result.message


def test_adapter_bytes_accepts_the_reference():
    result = check_adapter_bytes(lambda shapes, r, b: sum(r * (i + o) for o, i in shapes) * b)
    assert result.passed and result.cases == 4


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda s, r, b: sum(r * (i + o) for o, i in s), "multiply the parameter count by bytes_per_param"),
    (lambda s, r, b: sum(2 * r * i for o, i in s) * b, "2·r·d only holds for square W0"),
    (lambda s, r, b: sum(o * i + r * (i + o) for o, i in s) * b, "never W0"),
    (lambda s, r, b: sum(r * i for o, i in s) * b, "count B (d_out, r)"),
    (_not_done, NOT_DONE),
])
def test_adapter_bytes_teaches(fn, hint):
    result = check_adapter_bytes(fn)
    assert not result.passed and hint in result.message


def test_peft_key_accepts_the_reference(capsys):
    result = check_peft_key(lambda key: f"base_model.model.{key}.weight")
    assert result.passed and result.cases == result.total == 3
    assert capsys.readouterr().out.strip() == "✓ peft_key: 3/3 cases"


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda key: f"base_model.model.{key}", "their tensor is `.weight`"),
    (lambda key: f"{key}.weight", "prefix 'base_model.model.'"),
    (lambda key: f"base_model.{key}.weight", "prefix 'base_model.model.'"),
    (lambda key: f"base_model.model.{key}.default.weight", "drop the adapter name"),
    (lambda key: 3, "expected a str, got int"),
    (lambda key: key.nope(), "raised AttributeError"),
    (_not_done, NOT_DONE),
    ("not a function", "expected a function"),
])
def test_peft_key_teaches(fn, hint, capsys):
    result = check_peft_key(fn)
    assert not result.passed and hint in result.message
    assert capsys.readouterr().out.startswith("✗ peft_key:")
