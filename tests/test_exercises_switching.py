"""The 08 §8.5 checkers (`unmerge`, `serve_in_turn`) accept the reference, teach on known-wrong
answers, and their hidden sizes catch an answer written for the visible size only."""

import pytest
import torch

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.switching import check_serve_in_turn, check_unmerge

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def unmerge(layer):
    if not layer.merged:
        raise RuntimeError("not merged: nothing to unmerge")
    with torch.no_grad():
        layer.base.weight -= layer.scaling * (layer.lora_B @ layer.lora_A)
    layer.merged = False


def _load(layer, A, B):
    with torch.no_grad():
        layer.lora_A.copy_(A)
        layer.lora_B.copy_(B)


def serve_in_turn(layer, adapters, x, unmerge_it=unmerge, load=True, merge=True, last=True):
    outputs = []
    for i, (A, B) in enumerate(adapters):
        if load:
            _load(layer, A, B)
        if merge:
            layer.merge()
        with torch.no_grad():
            outputs.append(layer(x))
        if merge and (last or i < len(adapters) - 1):
            unmerge_it(layer)
    return outputs


def _not_done(*args):
    raise NotImplementedError()


def test_unmerge_accepts_the_reference(lang, capsys):
    result = check_unmerge(unmerge, hidden=True)
    assert result.passed and result.cases == result.total == 12 and result.hidden == 8
    assert lang.en(capsys.readouterr().out).strip() == "✓ unmerge: 12/12 cases (8 hidden)"


def _no_scaling(layer):
    with torch.no_grad():
        layer.base.weight -= layer.lora_B @ layer.lora_A
    layer.merged = False


def _keeps_flag(layer):
    if not layer.merged:
        raise RuntimeError
    with torch.no_grad():
        layer.base.weight -= layer.scaling * (layer.lora_B @ layer.lora_A)


def _never_refuses(layer):
    with torch.no_grad():
        layer.base.weight -= layer.scaling * (layer.lora_B @ layer.lora_A)
    layer.merged = False


def _new_tensor(layer):
    layer.base.weight - layer.scaling * (layer.lora_B @ layer.lora_A)
    layer.merged = False


def _adds(layer):
    with torch.no_grad():
        layer.base.weight += layer.scaling * (layer.lora_B @ layer.lora_A)
    layer.merged = False


@pytest.mark.parametrize(("fn", "hint"), [
    (_no_scaling, "the scaling α/r is missing"),
    (_keeps_flag, "layer.merged is still True"),
    (_never_refuses, "must refuse"),
    (_new_tensor, "subtract ΔW from it in place"),
    (_adds, "unmerge subtracts it"),
    (lambda layer: layer.base.weight @ layer.lora_B, "raised RuntimeError"),
    (lambda layer: 1 / 0, "raised ZeroDivisionError"),
    (_not_done, NOT_DONE),
    ("not a function", "expected a function"),
])
def test_unmerge_teaches(lang, fn, hint, capsys):
    result = check_unmerge(fn)
    assert not result.passed and hint in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ unmerge:")


def test_unmerge_special_cased_to_the_visible_size_fails_a_hidden_one(lang):
    def visible_only(layer):
        if layer.in_features == 16:
            unmerge(layer)
    assert check_unmerge(visible_only).passed
    result = check_unmerge(visible_only, hidden=True)
    assert not result.passed and "hidden d_in=7" in lang.en(result.message) and result.cases == 4


def test_serve_in_turn_accepts_the_reference_with_the_learners_or_the_layers_unmerge(lang, capsys):
    assert check_serve_in_turn(serve_in_turn, hidden=True).passed
    result = check_serve_in_turn(lambda l, a, x: serve_in_turn(l, a, x, unmerge_it=lambda m: m.unmerge()),
                                 hidden=True)
    assert result.passed and result.cases == result.total == 12 and result.hidden == 8
    assert lang.en(
        capsys.readouterr().out).strip().splitlines()[-1] == "✓ serve_in_turn: 12/12 cases (8 hidden)"


def _stacks(layer, adapters, x):
    outputs = []
    for A, B in adapters:
        _load(layer, A, B)
        with torch.no_grad():
            layer.base.weight += layer.scaling * B @ A
            outputs.append(layer.base(x))
    return outputs


@pytest.mark.parametrize(("fn", "hint"), [
    (lambda l, a, x: serve_in_turn(l, a, x, merge=False), "serve each task merged"),
    (lambda l, a, x: serve_in_turn(l, a, x, load=False), "the adapter the layer held before"),
    (lambda l, a, x: serve_in_turn(l, a, x, unmerge_it=lambda m: None), "already merged"),
    (lambda l, a, x: serve_in_turn(l, a, x, last=False), "still merged at the end"),
    (_stacks, "W still held the previous task's ΔW"),
    (lambda l, a, x: serve_in_turn(l, a, x)[0], "a list of 2 tensors"),
    (lambda l, a, x: [o.T for o in serve_in_turn(l, a, x)], "shape (5, 8)"),
    (lambda l, a, x: [o * float("nan") for o in serve_in_turn(l, a, x)], "NaN"),
    (lambda l, a, x: None, "got NoneType"),
    (_not_done, NOT_DONE),
    (3, "expected a function"),
])
def test_serve_in_turn_teaches(lang, fn, hint, capsys):
    result = check_serve_in_turn(fn)
    assert not result.passed and hint in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ serve_in_turn:")


def test_serve_in_turn_hidden_sizes_catch_two_adapters_hard_coded(lang):
    def two_only(layer, adapters, x):
        first_two = serve_in_turn(layer, adapters[:2], x)
        return first_two + first_two[:1] * (len(adapters) - 2)
    assert check_serve_in_turn(two_only).passed
    result = check_serve_in_turn(two_only, hidden=True)
    assert not result.passed and "hidden d_in=7" in lang.en(result.message) and "task 2" in lang.en(
        result.message)
    assert result.cases == 5  # the visible size's 4, and the hidden size's list of outputs


def test_partial_credit_counts_the_properties_that_held():
    result = check_serve_in_turn(lambda l, a, x: serve_in_turn(l, a, x, last=False))
    assert (result.cases, result.total) == (3, 4)
