"""The checkers of notebook 10 accept reference solutions and reject known-wrong ones with a hint."""

import math

import pytest
import torch

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.variants import (
    check_dora_weight,
    check_lora_scaling,
    check_pissa_init,
    check_quantize_block,
)
from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.variants import DoRALinear, pissa_init_
from lora_lab.maths import nf4

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _stub(*args):
    raise NotImplementedError()


def _dora(W0, A, B, m, s):
    V = W0 + s * B @ A
    return m[:, None] * V / V.norm(dim=1, keepdim=True)


def _dora_by_package(W0, A, B, m, s):
    """The package's DoRALinear, set to the same tensors (s = α/r with α = s·r)."""
    d_out, d_in = W0.shape
    layer = DoRALinear(torch.nn.Linear(d_in, d_out), r=A.shape[0], alpha=s * A.shape[0])
    with torch.no_grad():
        layer.base.weight.copy_(W0)
        layer.lora_A.copy_(A)
        layer.lora_B.copy_(B)
        layer.lora_magnitude.copy_(m)
    return layer.weight().detach()


def _pissa(W0, r, s):
    U, S, Vh = torch.linalg.svd(W0, full_matrices=False)
    root = (S[:r] / s).sqrt()
    A, B = root[:, None] * Vh[:r], U[:, :r] * root
    return A, B, W0 - s * B @ A


def _pissa_by_package(W0, r, s):
    d_out, d_in = W0.shape
    layer = LoRALinear(torch.nn.Linear(d_in, d_out).double(), r=r, alpha=s * r)
    with torch.no_grad():
        layer.base.weight.copy_(W0)
    pissa_init_(layer)
    return layer.lora_A.detach(), layer.lora_B.detach(), layer.base.weight.detach()


def _pissa_flipped_signs(W0, r, s):
    A, B, res = _pissa(W0, r, s)
    return -A, -B, res  # an SVD may return either sign: still right


def _quantize(w, levels):
    return nf4.nf4_roundtrip(w, block_size=w.numel(), levels=levels)


@pytest.mark.parametrize(("checker", "reference"), [
    (check_lora_scaling, lambda a, r, rs: a / math.sqrt(r) if rs else a / r),
    (check_dora_weight, _dora),
    (check_dora_weight, _dora_by_package),
    (check_pissa_init, _pissa),
    (check_pissa_init, _pissa_by_package),
    (check_pissa_init, _pissa_flipped_signs),
    (check_quantize_block, _quantize),
])
def test_checkers_accept_the_reference(lang, checker, reference, capsys):
    result = checker(reference)
    assert result.passed and result.cases == result.total
    assert lang.en(capsys.readouterr().out).startswith("✓")


def _pissa_smallest(W0, r, s):
    U, S, Vh = torch.linalg.svd(W0, full_matrices=False)
    root = (S[-r:] / s).sqrt()
    A, B = root[:, None] * Vh[-r:], U[:, -r:] * root
    return A, B, W0 - s * B @ A


def _pissa_no_divide(W0, r, s):
    U, S, Vh = torch.linalg.svd(W0, full_matrices=False)
    A, B = S[:r].sqrt()[:, None] * Vh[:r], U[:, :r] * S[:r].sqrt()
    return A, B, W0 - s * B @ A


def _pissa_no_residual(W0, r, s):
    A, B, _ = _pissa(W0, r, s)
    return A, B, W0


def _pissa_unbalanced(W0, r, s):
    U, S, Vh = torch.linalg.svd(W0, full_matrices=False)
    A, B = Vh[:r], U[:, :r] * S[:r] / s
    return A, B, W0 - s * B @ A


def _pissa_swapped(W0, r, s):
    A, B, res = _pissa(W0, r, s)
    return B, A, res


@pytest.mark.parametrize(("checker", "wrong", "hint"), [
    (check_lora_scaling, lambda a, r, rs: a / r, "divisor is √r"),
    (check_lora_scaling, lambda a, r, rs: a * math.sqrt(r) if rs else a / r, "you multiplied"),
    (check_lora_scaling, lambda a, r, rs: math.sqrt(a / r) if rs else a / r, "only r goes under the root"),
    (check_lora_scaling, lambda a, r, rs: a / math.sqrt(r), "stays the paper's α/r"),
    (check_dora_weight, lambda W0, A, B, m, s: m[:, None] * (W0 + s * B @ A) / (W0 + s * B @ A).norm(dim=0),
     "per output row"),
    (check_dora_weight, lambda W0, A, B, m, s: _dora(W0, A, B, m, 1.0), "s·B A"),
    (check_dora_weight, lambda W0, A, B, m, s: _dora(W0, A, B, torch.ones_like(m), s), "only the direction"),
    (check_dora_weight, lambda W0, A, B, m, s: m[:, None] * (W0 + s * B @ A) / (W0 + s * B @ A).norm(),
     "Frobenius"),
    (check_dora_weight, lambda W0, A, B, m, s: m[:, None] * (W0 + s * B @ A), "row norms first"),
    (check_dora_weight, lambda W0, A, B, m, s: m[:, None] * W0 / W0.norm(dim=1, keepdim=True) + s * B @ A,
     "not W0 alone"),
    (check_pissa_init, _pissa_smallest, "smallest singular values"),
    (check_pissa_init, _pissa_no_divide, "divide Σ_r by s"),
    (check_pissa_init, _pissa_no_residual, "residual"),
    (check_pissa_init, _pissa_unbalanced, "equally large"),
    (check_pissa_init, _pissa_swapped, "swap A and B"),
    (check_pissa_init, lambda W0, r, s: _pissa(W0, r, s)[:2], "three tensors"),
    (check_quantize_block, lambda w, lv: lv[(w[:, None] / w.abs().max() - lv).abs().argmin(1)], "multiply"),
    (check_quantize_block, lambda w, lv: lv[(w[:, None] - lv).abs().argmin(1)] * w.abs().max(), "divide w"),
    (check_quantize_block,
     lambda w, lv: lv[(torch.searchsorted(lv, w / w.abs().max(), right=True) - 1).clamp(0, 15)]
     * w.abs().max(),
     "nearest level"),
    (check_quantize_block, lambda w, lv: w, "values differ"),
])
def test_checkers_reject_known_mistakes_with_a_hint(lang, checker, wrong, hint, capsys):
    result = checker(wrong)
    out = lang.en(capsys.readouterr().out)
    assert not result.passed
    assert out.startswith("✗") and hint in out, out


@pytest.mark.parametrize("checker", [check_lora_scaling, check_dora_weight, check_pissa_init,
                                     check_quantize_block])
def test_unfinished_and_crashing_answers_become_messages(lang, checker, capsys):
    assert NOT_DONE in lang.en(checker(_stub).message)
    result = checker(lambda *args: 1 / 0)
    assert not result.passed and "ZeroDivisionError" in lang.en(result.message)
    assert "expected a function" in lang.en(checker(3).message) or not checker(3).passed


def _lora_scaling(a, r, rs):
    return a / math.sqrt(r) if rs else a / r


@pytest.mark.parametrize(("checker", "reference"), [
    (check_lora_scaling, _lora_scaling),
    (check_dora_weight, _dora),
    (check_pissa_init, _pissa),
    (check_quantize_block, _quantize),
])
def test_hidden_cases_accept_the_reference(checker, reference):
    visible, hidden = checker(reference), checker(reference, hidden=True)
    assert hidden.passed and hidden.hidden > 0 and hidden.total == visible.total + hidden.hidden


def _special(visible_only, fallback):
    """An answer right on the visible cases only, by remembering their first argument's shape or value."""
    return lambda *args: visible_only(*args) if fallback(*args) else 0.0 * visible_only(*args)


@pytest.mark.parametrize(("checker", "fn"), [
    (check_lora_scaling, lambda a, r, rs: _lora_scaling(a, r, rs) if a in (16.0, 8.0, 32.0, 1.0) else 1.0),
    (check_dora_weight, _special(_dora, lambda W0, *rest: tuple(W0.shape) in ((5, 5), (6, 4), (3, 7)))),
    (check_pissa_init, lambda W0, r, s: _pissa(W0, r, s) if tuple(W0.shape) in ((6, 8), (8, 5), (6, 6))
     else _pissa_no_residual(W0, r, s)),
    (check_quantize_block, _special(_quantize, lambda w, lv: w.numel() in (64, 16, 4))),
])
def test_hidden_cases_catch_an_answer_special_cased_to_the_visible_ones(lang, checker, fn, capsys):
    assert checker(fn).passed
    result = checker(fn, hidden=True)
    assert not result.passed and "hidden case" in lang.en(result.message), lang.en(result.message)
    assert 0 < result.cases < result.total


def test_pissa_shape_problem_counts_the_hidden_cases_too(lang, capsys):
    result = check_pissa_init(_stub, hidden=True)
    assert result.total == 5 and result.hidden == 2 and result.cases == 0 and NOT_DONE in lang.en(
        result.message)
