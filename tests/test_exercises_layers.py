"""The checkers of 03_lora_linear accept the reference and reject known-wrong answers, teaching."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.layers import (
    check_lora_forward,
    check_lora_init,
    check_merge,
    check_param_counts,
)

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def not_done(*args):
    raise NotImplementedError()


# --- forward -----------------------------------------------------------------------------------

def forward_ref(x, W, A, B, alpha):
    return x @ W.t() + (alpha / A.shape[0]) * (x @ A.t()) @ B.t()


def test_forward_accepts_reference(lang, capsys):
    result = check_lora_forward(forward_ref)
    assert result.passed and result.cases == result.total == 4
    assert lang.en(capsys.readouterr().out).strip() == "✓ lora_forward: 4/4 cases"


def test_forward_accepts_nn_functional():
    def via_linear(x, W, A, B, alpha):
        lora = nn.functional.linear(nn.functional.linear(x, A), B)  # (x Aᵀ) Bᵀ
        return nn.functional.linear(x, W) + lora * (alpha / A.shape[0])
    assert check_lora_forward(via_linear, show=False).passed


@pytest.mark.parametrize(("fn", "message"), [
    (lambda x, W, A, B, a: x @ W.t() + (x @ A.t()) @ B.t(), "is the scaling α/r missing?"),
    (lambda x, W, A, B, a: x @ W.t() + a * (x @ A.t()) @ B.t(), "scale by α/r, not by α"),
    (lambda x, W, A, B, a: x @ W.t() + A.shape[0] / a * (x @ A.t()) @ B.t(), "not r/α"),
    (lambda x, W, A, B, a: a / A.shape[0] * (x @ A.t()) @ B.t(), "add x @ W0ᵀ"),
    (lambda x, W, A, B, a: x @ W.t() + a / A.shape[0] * x @ (B @ A).t(),
     "you built the (d_out, d_in) matrix B @ A"),
    (lambda x, W, A, B, a: x @ W.t() + a / A.shape[0] * (x @ B) @ A, "raised RuntimeError"),
    (lambda x, W, A, B, a: None, "returned None — did you forget `return`?"),  # a forgotten `return`
    (not_done, NOT_DONE),
])
def test_forward_rejects_mistakes(lang, fn, message, capsys):
    result = check_lora_forward(fn)
    assert not result.passed and message in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ lora_forward:")


def test_forward_untransposed_weight_hint(lang):
    def wrong(x, W, A, B, a):
        return x @ W + a / A.shape[0] * (x @ A.t()) @ B.t()
    result = check_lora_forward(wrong, show=False)
    assert not result.passed
    assert "shape" in lang.en(result.message) or "x @ W0ᵀ" in lang.en(result.message)


# --- init --------------------------------------------------------------------------------------

def init_ref(d_in, d_out, r):
    A = torch.empty(r, d_in)
    nn.init.kaiming_uniform_(A, a=math.sqrt(5))
    return A, torch.zeros(d_out, r)


def test_init_accepts_reference_and_gaussian(lang, capsys):
    assert check_lora_init(init_ref).passed
    assert lang.en(capsys.readouterr().out).strip() == "✓ lora_init: 3/3 cases"
    assert check_lora_init(lambda i, o, r: (torch.randn(r, i) / r, torch.zeros(o, r)), show=False).passed
    assert check_lora_init(lambda i, o, r: (np.random.randn(r, i), np.zeros((o, r))), show=False).passed


@pytest.mark.parametrize(("fn", "message"), [
    (lambda i, o, r: (torch.zeros(r, i), torch.zeros(o, r)), "neither gets a gradient"),
    (lambda i, o, r: (torch.randn(r, i), torch.randn(o, r)), "B must start at zero"),
    (lambda i, o, r: (torch.zeros(r, i), torch.randn(o, r)), "the other way round"),
    (lambda i, o, r: (torch.zeros(o, r), torch.randn(r, i)), "did you swap A and B?"),
    (lambda i, o, r: (torch.ones(r, i), torch.zeros(o, r)), "A must be random"),
    (lambda i, o, r: (torch.randn(i, r), torch.zeros(r, o)), "expected A (2, 6) and B (4, 2)"),
    (lambda i, o, r: torch.zeros(o, i), "expected a pair (A, B), got Tensor"),
    (lambda i, o, r: (torch.ones(r, i, dtype=torch.long), torch.zeros(o, r, dtype=torch.long)),
     "floating-point"),
    (lambda i, o, r: 1 / 0, "raised ZeroDivisionError"),
    (not_done, NOT_DONE),
])
def test_init_rejects_mistakes(lang, fn, message, capsys):
    result = check_lora_init(fn)
    assert not result.passed and message in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ lora_init:")


# --- merge -------------------------------------------------------------------------------------

def merge_ref(W0, A, B, alpha):
    return W0 + (alpha / A.shape[0]) * B @ A


def test_merge_accepts_reference(lang, capsys):
    assert check_merge(merge_ref).passed
    assert lang.en(capsys.readouterr().out).strip() == "✓ merge: 3/3 cases"


def in_place(W0, A, B, alpha):
    W0 += (alpha / A.shape[0]) * B @ A
    return W0


@pytest.mark.parametrize(("fn", "message"), [
    (lambda W, A, B, a: W + B @ A, "is the scaling α/r missing?"),
    (lambda W, A, B, a: W + a * B @ A, "scale by α/r, not by α"),
    (lambda W, A, B, a: a / A.shape[0] * B @ A, "that is ΔW alone"),
    (lambda W, A, B, a: W - a / A.shape[0] * B @ A, "subtracting it unmerges"),
    (lambda W, A, B, a: (W + a / A.shape[0] * B @ A).t(), "got (6, 4) — did you swap A and B"),
    (in_place, "changed W0 in place"),
    (not_done, NOT_DONE),
])
def test_merge_rejects_mistakes(lang, fn, message, capsys):
    result = check_merge(fn)
    assert not result.passed and message in lang.en(result.message)
    assert lang.en(capsys.readouterr().out).startswith("✗ merge:")


# --- parameter counts --------------------------------------------------------------------------

def counts_ref(d_in, d_out, r):
    return d_out * d_in + d_out, r * d_in + d_out * r + d_out


def test_counts_accept_reference(lang, capsys):
    assert check_param_counts(counts_ref).passed
    assert counts_ref(1024, 1024, 4) == (1_049_600, 9_216)  # the source notes' example
    assert lang.en(capsys.readouterr().out).strip() == "✓ param_counts: 4/4 cases"


@pytest.mark.parametrize(("fn", "message"), [
    (lambda i, o, r: (o * i, r * (i + o)), "count the bias (d_out numbers) in both"),
    (lambda i, o, r: (o * i + o, r * (i + o)), "also count the bias in the LoRA column"),
    (lambda i, o, r: (o * i + o, 2 * r * i + o), "2·r·d only holds when d_in = d_out"),
    (lambda i, o, r: (o * i + o, r * i * o + o), "not the size of A plus B"),
    (lambda i, o, r: o * i + o, "expected shape (2,), got ()"),
    (not_done, NOT_DONE),
])
def test_counts_reject_mistakes(lang, fn, message):
    result = check_param_counts(fn, show=False)
    assert not result.passed and message in lang.en(result.message)


# --- the grade cells' hidden cases -------------------------------------------------------------

@pytest.mark.parametrize(("check", "ref", "visible", "hidden"), [
    (check_lora_forward, forward_ref, 4, 2), (check_merge, merge_ref, 3, 2),
    (check_param_counts, counts_ref, 4, 3),
])
def test_hidden_cases_run_after_the_visible_ones(check, ref, visible, hidden):
    result = check(ref, show=False, hidden=True)
    assert result.passed and result.total == visible + hidden and result.hidden == hidden


def test_hidden_cases_catch_an_answer_that_special_cases_the_visible_ones():
    seen = {(1024, 1024, 4), (768, 3072, 8), (64, 32, 1), (12288, 12288, 4)}

    def cheat(d_in, d_out, r):
        return counts_ref(d_in, d_out, r) if (d_in, d_out, r) in seen else (0, 0)

    assert check_param_counts(cheat, show=False).passed
    result = check_param_counts(cheat, show=False, hidden=True)
    assert not result.passed and result.cases == 4 and result.total == 7

    def cheat_forward(x, W, A, B, alpha):  # right only for the visible α values
        return forward_ref(x, W, A, B, alpha if alpha in (4.0, 1.0, 16.0, 2.0) else 1.0)

    assert check_lora_forward(cheat_forward, show=False).passed
    assert not check_lora_forward(cheat_forward, show=False, hidden=True).passed
