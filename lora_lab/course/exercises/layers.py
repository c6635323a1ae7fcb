"""Checkers for `03_lora_linear`: the LoRA forward, the initialisation, merging, parameter counts."""

from __future__ import annotations

import torch

from lora_lab.course.exercises import (
    NOT_DONE,
    Case,
    CheckResult,
    Mistake,
    cases_passed,
    line,
    raised,
    run_cases,
)
from lora_lab.course.i18n import t
from lora_lab.lora.trace import creates_shape


def _say(name: str, problem: str | None, cases: int, total: int, show: bool = True) -> CheckResult:
    message = line(name, problem is None, cases_passed(cases, total) if problem is None else problem)
    if show:
        print(message)
    return CheckResult(name, problem is None, cases, total, message)


def _tensors(seed: int, *shapes) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]


# --- the LoRA forward --------------------------------------------------------------------------

def _forward(x, W, A, B, alpha):
    return x @ W.t() + (alpha / A.shape[0]) * (x @ A.t()) @ B.t()


FORWARD_MISTAKES = [
    Mistake(lambda x, W, A, B, a: x @ W.t() + (x @ A.t()) @ B.t(), "is the scaling α/r missing?"),
    Mistake(lambda x, W, A, B, a: x @ W.t() + a * (x @ A.t()) @ B.t(), "scale by α/r, not by α"),
    Mistake(lambda x, W, A, B, a: x @ W.t() + (A.shape[0] / a) * (x @ A.t()) @ B.t(),
            "the scaling is α/r, not r/α"),
    Mistake(lambda x, W, A, B, a: (a / A.shape[0]) * (x @ A.t()) @ B.t(),
            "the frozen base still takes part: add x @ W0ᵀ"),
    Mistake(lambda x, W, A, B, a: x @ W + (a / A.shape[0]) * (x @ A.t()) @ B.t(),
            "nn.Linear's W0 is (d_out, d_in), so the base output is x @ W0ᵀ"),
]


def _forward_hidden() -> list[Case]:
    cases = []
    for i, (lead, d_in, d_out, r, alpha) in enumerate([((4,), 5, 11, 2, 3.0), ((2, 2), 9, 6, 4, 0.5)]):
        x, W, A, B = _tensors(30 + i, (*lead, d_in), (d_out, d_in), (r, d_in), (d_out, r))
        label = f"x {tuple(x.shape)}, r={r}, α={alpha:g}"
        cases.append(Case(label, (x, W, A, B, alpha), _forward(x, W, A, B, alpha)))
    return cases


def check_lora_forward(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(x, W0, A, B, alpha)` must return x W0ᵀ + (α/r)(x Aᵀ)Bᵀ without forming B @ A;
    `hidden=True` adds the grade cell's hidden cases.

    Shapes: x (..., d_in), W0 (d_out, d_in), A (r, d_in), B (d_out, r) -> (..., d_out).
    """
    shapes = [(5, 6, 4, 2, 4.0), (3, 8, 8, 1, 1.0), (7, 3, 9, 3, 16.0)]
    cases = []
    for i, (n, d_in, d_out, r, alpha) in enumerate(shapes):
        x, W, A, B = _tensors(i, (n, d_in), (d_out, d_in), (r, d_in), (d_out, r))
        cases.append(Case(f"x {tuple(x.shape)}, r={r}, α={alpha:g}", (x, W, A, B, alpha),
                          _forward(x, W, A, B, alpha)))
    x, W, A, B = _tensors(9, (2, 3, 5), (4, 5), (2, 5), (4, 2))
    cases.append(Case(t("x (2, 3, 5): leading batch dimensions"), (x, W, A, B, 2.0),
                      _forward(x, W, A, B, 2.0)))
    result = run_cases("lora_forward", fn, cases, FORWARD_MISTAKES, show=False,
                       hidden=_forward_hidden() if hidden else ())
    if result.passed:
        x, W, A, B = _tensors(0, (5, 6), (4, 6), (2, 6), (4, 2))
        if creates_shape(lambda: fn(x, W, A, B, 4.0), (4, 6)):
            problem = t("right values, but you built the (d_out, d_in) matrix B @ A "
                        "— go x → A → B: (x @ Aᵀ) @ Bᵀ never forms it")
            return _say("lora_forward", problem, 0, len(cases), show)
    if show:
        print(result.message)
    return result


# --- the initialisation ------------------------------------------------------------------------

def _init_problem(pair, d_in: int, d_out: int, r: int) -> str | None:
    if not (isinstance(pair, tuple) and len(pair) == 2):
        return t("expected a pair (A, B), got {kind}", kind=type(pair).__name__)
    try:
        A, B = (torch.as_tensor(t) if not isinstance(t, torch.Tensor) else t for t in pair)
    except (TypeError, ValueError, RuntimeError):  # e.g. (None, None): not numbers at all
        return t("A and B must be tensors, got {A} and {B}", A=type(pair[0]).__name__,
                 B=type(pair[1]).__name__)
    if tuple(A.shape) != (r, d_in) or tuple(B.shape) != (d_out, r):
        swapped = tuple(A.shape) == (d_out, r)
        return t("expected A {want_A} and B {want_B}, got A {A} and B {B} — did you swap A and B?" if swapped
                 else "expected A {want_A} and B {want_B}, got A {A} and B {B}",
                 want_A=(r, d_in), want_B=(d_out, r), A=tuple(A.shape), B=tuple(B.shape))
    if not A.is_floating_point() or not B.is_floating_point():
        return t("A and B must hold floating-point numbers")
    if bool((A == 0).all()) and bool((B == 0).all()):
        return t("A and B are both zero: then neither gets a gradient and LoRA never learns — make A random")
    if not bool((B == 0).all()):
        if bool((A == 0).all()):
            return t("B must start at zero, so that ΔW = BA = 0 and the layer starts equal to its base "
                     "(you set A = 0 and B random: the paper does it the other way round)")
        return t("B must start at zero, so that ΔW = BA = 0 and the layer starts equal to its base")
    if A.unique().numel() < 2:
        return t("A must be random (e.g. torch.randn or nn.init.kaiming_uniform_), not a constant")
    return None


def check_lora_init(fn, show: bool = True) -> CheckResult:
    """`fn(d_in, d_out, r)` must return (A, B): A (r, d_in) random, B (d_out, r) zero."""
    shapes = [(6, 4, 2), (16, 16, 4), (3, 9, 1)]
    total = len(shapes)
    for i, (d_in, d_out, r) in enumerate(shapes):
        try:
            pair = fn(d_in, d_out, r)
        except NotImplementedError:
            return _say("lora_init", t(NOT_DONE), i, total, show)
        except Exception as exc:  # a learner's bug becomes a message
            return _say("lora_init", raised(exc), i, total, show)
        problem = _init_problem(pair, d_in, d_out, r)
        if problem is not None:
            label = f"d_in={d_in}, d_out={d_out}, r={r}"
            return _say("lora_init", t("case {label}: {problem}", label=label, problem=problem), i, total,
                        show)
    return _say("lora_init", None, total, total, show)


# --- merging -----------------------------------------------------------------------------------

def _merge(W0, A, B, alpha):
    return W0 + (alpha / A.shape[0]) * B @ A


MERGE_MISTAKES = [
    Mistake(lambda W, A, B, a: W + B @ A, "is the scaling α/r missing?"),
    Mistake(lambda W, A, B, a: W + a * B @ A, "scale by α/r, not by α"),
    Mistake(lambda W, A, B, a: (a / A.shape[0]) * B @ A, "that is ΔW alone: add it to W0"),
    Mistake(lambda W, A, B, a: W - (a / A.shape[0]) * B @ A, "merging adds ΔW; subtracting it unmerges"),
]


def check_merge(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(W0, A, B, alpha)` must return a new W0 + (α/r)·B @ A and leave W0 unchanged;
    `hidden=True` adds the grade cell's hidden cases."""
    shapes = [(4, 6, 2, 4.0), (8, 8, 1, 1.0), (9, 3, 3, 16.0)]
    more = [(5, 7, 4, 2.5), (3, 12, 2, 32.0)] if hidden else []
    cases = []
    for i, (d_out, d_in, r, alpha) in enumerate(shapes + more):
        W, A, B = _tensors(10 + i, (d_out, d_in), (r, d_in), (d_out, r))
        label = f"W0 {(d_out, d_in)}, r={r}, α={alpha:g}"
        cases.append(Case(label, (W, A, B, alpha), _merge(W, A, B, alpha)))
    n = len(shapes)
    result = run_cases("merge", fn, cases[:n], MERGE_MISTAKES, show=False, hidden=cases[n:])
    if result.passed:
        W, A, B = _tensors(20, (4, 6), (2, 6), (4, 2))
        before = W.clone()
        fn(W, A, B, 2.0)
        if not torch.equal(W, before):
            problem = t("right values, but your function changed W0 in place — return a new matrix "
                        "(W0 + ΔW), so the caller can still unmerge or switch tasks")
            return _say("merge", problem, 0, len(cases), show)
    if show:
        print(result.message)
    return result


# --- parameter counts --------------------------------------------------------------------------

def _counts(d_in, d_out, r):
    return d_out * d_in + d_out, r * d_in + d_out * r + d_out


COUNT_MISTAKES = [
    Mistake(lambda i, o, r: (o * i, r * (i + o)), "the notes count the bias (d_out numbers) in both"),
    Mistake(lambda i, o, r: (o * i + o, r * (i + o)), "the notes also count the bias in the LoRA column"),
    Mistake(lambda i, o, r: (o * i + o, 2 * r * i + o), "2·r·d only holds when d_in = d_out; count A and B"),
    Mistake(lambda i, o, r: (o * i + o, r * i * o + o), "r · d_in · d_out is not the size of A plus B"),
]


def check_param_counts(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(d_in, d_out, r)` -> (full fine-tuning W0 + bias, LoRA A + B + bias) as the notes count;
    `hidden=True` adds the grade cell's hidden cases."""
    shapes = [(1024, 1024, 4), (768, 3072, 8), (64, 32, 1), (12288, 12288, 4)]
    more = [(10, 3, 2), (4096, 11008, 16), (5, 5, 5)] if hidden else []
    cases = [Case(f"d_in={i}, d_out={o}, r={r}", (i, o, r), _counts(i, o, r)) for i, o, r in shapes]
    extra = [Case(f"d_in={i}, d_out={o}, r={r}", (i, o, r), _counts(i, o, r)) for i, o, r in more]
    return run_cases("param_counts", fn, cases, COUNT_MISTAKES, show=show, hidden=extra)

