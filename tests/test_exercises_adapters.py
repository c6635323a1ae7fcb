"""The 08_deploy_and_switch checkers accept the reference and teach on known-wrong answers."""

import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.adapters import (
    PEFT_KEY_CASES,
    check_adapter_bytes,
    check_extra_flops,
    check_peft_key,
    check_switch_weight,
)

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _not_done(*args):
    raise NotImplementedError()


def test_extra_flops_accepts_the_reference(lang, capsys):
    result = check_extra_flops(lambda d_in, d_out, r, merged: 0 if merged else 2 * r * (d_in + d_out))
    assert result.passed and result.cases == result.total == 4
    assert lang.en(capsys.readouterr().out).strip() == "✓ extra_flops: 4/4 cases"


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda i, o, r, m: 2 * r * (i + o), "a merged layer runs only W = W0 + ΔW"),
    (lambda i, o, r, m: 0 if m else 2 * i * o, "the cost of applying a full ΔW"),
    (lambda i, o, r, m: 0 if m else r * (i + o), "2 FLOPs per multiply-add"),
    (_not_done, NOT_DONE),
])
def test_extra_flops_teaches(lang, fn, hint):
    result = check_extra_flops(fn)
    assert not result.passed and hint in lang.en(result.message)


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
def test_switch_weight_teaches(lang, fn, hint):
    result = check_switch_weight(fn)
    assert not result.passed and hint in lang.en(result.message)


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
def test_adapter_bytes_teaches(lang, fn, hint):
    result = check_adapter_bytes(fn)
    assert not result.passed and hint in lang.en(result.message)


def test_peft_key_accepts_the_reference(lang, capsys):
    result = check_peft_key(lambda key: f"base_model.model.{key}.weight")
    assert result.passed and result.cases == result.total == 3
    assert lang.en(capsys.readouterr().out).strip() == "✓ peft_key: 3/3 cases"


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
def test_peft_key_teaches(lang, fn, hint, capsys):
    result = check_peft_key(fn)
    assert not result.passed and hint in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ peft_key:")


@pytest.mark.parametrize(("check", "reference", "visible_total", "hidden"), [
    (check_extra_flops, lambda i, o, r, m: 0 if m else 2 * r * (i + o), 4, 4),
    (check_switch_weight, lambda W, Ao, Bo, An, Bn, s: W - s * Bo @ Ao + s * Bn @ An, 3, 3),
    (check_adapter_bytes, lambda shapes, r, b: sum(r * (i + o) for o, i in shapes) * b, 4, 3),
    (check_peft_key, lambda key: f"base_model.model.{key}.weight", 3, 2),
])
def test_hidden_cases_accept_the_reference(lang, check, reference, visible_total, hidden):
    result = check(reference, hidden=True)
    assert result.passed and result.cases == result.total == visible_total + hidden
    assert result.hidden == hidden and f"({hidden} hidden)" in lang.en(result.message)


def test_hidden_cases_catch_answers_special_cased_to_the_visible_ones(lang):
    flops = {(1024, 1024, 4): 16384, (768, 3072, 8): 61440, (12288, 12288, 4): 196608}
    visible_flops = lambda i, o, r, m: 0 if m else flops.get((i, o, r), 0)  # noqa: E731
    assert check_extra_flops(visible_flops).passed
    result = check_extra_flops(visible_flops, hidden=True)
    assert not result.passed and lang.en(
        result.message).startswith("✗ extra_flops: hidden case") and result.cases == 5

    keys = dict(PEFT_KEY_CASES)  # a lookup table of the visible keys
    assert check_peft_key(lambda key: keys.get(key, key)).passed
    result = check_peft_key(lambda key: keys.get(key, key), hidden=True)
    assert not result.passed and "hidden case" in lang.en(result.message) and result.cases == 3


def test_switch_weight_hidden_cases_catch_a_fixed_scaling(lang):
    fixed = lambda W, Ao, Bo, An, Bn, s: W - 2.0 * Bo @ Ao + 2.0 * Bn @ An if s == 2.0 \
        else W - s * Bo @ Ao + s * Bn @ An if s in (0.5, 1.0) else W  # noqa: E731
    assert check_switch_weight(fixed).passed
    result = check_switch_weight(fixed, hidden=True)
    assert not result.passed and "hidden case W (2, 9)" in lang.en(result.message)
