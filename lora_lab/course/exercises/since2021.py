"""Checkers for `12_since_2021`: the learning-rate ratio of two sweeps, counting intruder
dimensions, and LoRA+'s optimizer groups. Each takes `hidden=True` in its grade cell's hidden
region: more cases, of other shapes and sizes, that the student copy does not show."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lora_lab.course.exercises import (
    NOT_DONE,
    Case,
    CheckResult,
    Mistake,
    cases_passed,
    grading,
    is_not_done,
    line,
    raised,
    run_cases,
)
from lora_lab.course.i18n import N_, t
from lora_lab.lora.inject import add_lora
from lora_lab.maths.intruders import intruders


def _grid_best(lrs, losses, pick=np.argmin):
    losses = np.where(np.isfinite(losses), losses, np.inf)
    return float(np.asarray(lrs)[pick(losses)])


def _ratio(full_lrs, full_losses, lora_lrs, lora_losses):
    return _grid_best(lora_lrs, lora_losses) / _grid_best(full_lrs, full_losses)


_SWEEPS = [  # (full rates, their losses, LoRA rates, their losses): made-up sweeps
    ((1e-3, 2e-3, 4e-3), (0.5, 0.3, 0.4), (5e-3, 1e-2, 2e-2), (0.6, 0.35, 0.5)),
    ((1e-4, 1e-3, 1e-2), (0.9, 0.2, float("nan")), (1e-3, 1e-2, 1e-1), (0.4, 0.3, 0.2)),
    ((2e-3, 4e-3, 8e-3), (0.25, 0.3, 0.9), (1e-2, 2e-2, 4e-2), (float("nan"), 0.3, 0.2)),
]


_NAN = float("nan")
_HIDDEN_SWEEPS = [  # (label, sweep): other grid lengths, NumPy arrays, a ratio below 1, many NaNs
    (N_("LoRA's best below full's"), ((1e-2, 2e-2, 4e-2, 8e-2), (0.8, 0.4, 0.3, 0.5), (5e-3, 1e-2, 2e-2),
                                  (0.2, 0.3, 0.5))),
    (N_("arrays, grids of 5 and 2 rates"), (np.array([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]),
                                        np.array([0.31, 0.3, 0.5, _NAN, _NAN]), np.array([1e-3, 1e-2]),
                                        np.array([0.7, 0.2]))),
    (N_("all but one LoRA run diverged"), ((1e-3, 1e-2), (0.5, 0.6), (1e-2, 1e-1, 1.0), (_NAN, 0.9, _NAN))),
    (N_("lists, best at the first rate"), ([3e-4, 6e-4, 1.2e-3], [0.1, 0.2, 0.3], [3e-3, 6e-3], [0.4, 0.5])),
]


def check_lr_ratio(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(full_lrs, full_losses, lora_lrs, lora_losses)` -> best LoRA rate / best full rate, each
    the rate of lowest loss on its grid; a NaN loss (a diverged run) is the worst.
    `hidden=True` adds the grade cell's hidden cases."""
    cases = [Case(t("sweep {n}", n=i + 1), sweep, _ratio(*sweep)) for i, sweep in enumerate(_SWEEPS)]
    more = [Case(t(label), sweep, _ratio(*sweep)) for label, sweep in _HIDDEN_SWEEPS] if hidden else []
    mistakes = [
        Mistake(lambda fl, fs, ll, ls: 1.0 / _ratio(fl, fs, ll, ls),
                "that is full / LoRA: the question is how many times larger LoRA's best rate is"),
        Mistake(lambda fl, fs, ll, ls: _grid_best(ll, ls, np.argmax) / _grid_best(fl, fs, np.argmax),
                "you picked the highest loss: a lower test loss is better"),
        Mistake(lambda fl, fs, ll, ls: float(np.asarray(ll)[np.argmin(ls)] / np.asarray(fl)[np.argmin(fs)]),
                "a NaN loss won np.argmin: a run that diverged must count as the worst, not the best"),
        Mistake(lambda fl, fs, ll, ls: float(np.argmin(ls) / max(np.argmin(fs), 1)),
                "divide the learning rates at the best positions, not the positions themselves"),
    ]
    return run_cases("lr_ratio", fn, cases, mistakes, show=show, hidden=more)


def _planted(seed, d_out=12, d_in=10, strength=40.0, n_new=1, weak=0.0):
    """W0 with a decaying spectrum; W = W0 + strong updates along directions W0 does not use, and
    one of strength `weak` along the next: in ΔW's top k, never in W's (it tells the two apart)."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.normal(size=(d_out, d_out)))
    V, _ = np.linalg.qr(rng.normal(size=(d_in, d_in)))
    W0 = (U[:, :d_in] * np.linspace(10, 1, d_in)) @ V.T
    W = W0.copy()
    for j in range(n_new):
        v = rng.normal(size=d_in)
        W += strength / (j + 1) * np.outer(U[:, d_in + j], v / np.linalg.norm(v))
    if weak:
        v = rng.normal(size=d_in)
        W += weak * np.outer(U[:, d_in + n_new], v / np.linalg.norm(v))
    return W0, W


def _count(W0, W, k, eps, left=True, absolute=True, delta=False, top=True, full=False):
    U0 = np.linalg.svd(W0, full_matrices=full)[0 if left else 2]
    U = np.linalg.svd(W - W0 if delta else W, full_matrices=False)[0 if left else 2]
    U0, U = (U0, U) if left else (U0.T, U.T)
    cos = U.T @ U0
    match = (np.abs(cos) if absolute else cos).max(axis=1)
    return int(((match[:k] if top else match) < eps).sum())


def _intruder_cases() -> list[Case]:
    (W0, W), (W0b, Wb), (W0c, _) = _planted(0, weak=0.5), _planted(1, n_new=2), _planted(2)
    return [Case(t("one strong planted direction and a weak one, k=5, ε=0.5"), (W0, W, 5, 0.5),
                 len(intruders(W0, W, 5, 0.5))),
            Case(t("two planted directions, k=5, ε=0.5"), (W0b, Wb, 5, 0.5), len(intruders(W0b, Wb, 5, 0.5))),
            Case(t("W = -W0 (same directions, signs flipped), k=5"), (W0c, -W0c, 5, 0.5), 0),
            Case(t("two planted, k=1, ε=0.9"), (W0b, Wb, 1, 0.9), len(intruders(W0b, Wb, 1, 0.9)))]


def _hidden_intruder_cases() -> list[Case]:
    """Other shapes and thresholds; W0 rotated on its input side keeps every output direction."""
    W0, W = _planted(3, d_out=20, d_in=8, n_new=3)
    W0w, Ww = _planted(5, strength=0.5)  # a weak new direction, far down the ranking
    W0r, _ = _planted(4)
    R, _ = np.linalg.qr(np.random.default_rng(6).normal(size=(W0r.shape[1],) * 2))
    cases = [(t("three planted, W0 (20, 8), k=4, ε=0.5"), (W0, W, 4, 0.5)),
             (t("three planted, k=8, ε=0.3"), (W0, W, 8, 0.3)),
             (t("a weak new direction, k=3, ε=0.5"), (W0w, Ww, 3, 0.5)),
             (t("W = W0 @ R (every weight moved, no new output direction), k=6"), (W0r, W0r @ R, 6, 0.5))]
    return [Case(label, args, len(intruders(*args))) for label, args in cases]


def check_count_intruders(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(W0, W, k, eps)` -> how many of the top-k left singular vectors of W have a best |cosine|
    below eps with every left singular vector of W0.  Shapes: W0, W (d_out, d_in).
    `hidden=True` adds the grade cell's hidden cases."""
    mistakes = [
        Mistake(lambda W0, W, k, e: _count(W0, W, k, e, absolute=False),
                "a singular vector's sign is arbitrary (u and -u are one direction): compare |cos|"),
        Mistake(lambda W0, W, k, e: _count(W0, W, k, e, delta=True),
                "take the singular vectors of the fine-tuned W = W0 + ΔW, not of ΔW alone"),
        Mistake(lambda W0, W, k, e: _count(W0, W, k, e, top=False),
                "only the top-k singular vectors of W count (the strongest k)"),
        Mistake(lambda W0, W, k, e: _count(W0, W, k, e, full=True),
                "np.linalg.svd(W0) pads U with d_out - d_in columns that are no singular vectors of W0 "
                "(their singular value is 0, they span what W0 never writes): pass full_matrices=False"),
        Mistake(lambda W0, W, k, e: _count(W0, W, k, e, left=False),
                "use the left singular vectors (columns of U: directions in the output space)"),
    ]
    more = _hidden_intruder_cases() if hidden else []
    return run_cases("count_intruders", fn, _intruder_cases(), mistakes, show=show, hidden=more)


# ---- LoRA+: the optimizer's parameter groups -----------------------------------------------------

def _tiny_lora_model(seed: int = 0) -> nn.Module:
    """Two adapted 6×6 projections and a trainable head (add_lora freezes all but A and B)."""
    torch.manual_seed(seed)
    model = nn.Sequential()
    model.add_module("q_proj", nn.Linear(6, 6))
    model.add_module("v_proj", nn.Linear(6, 6))
    model.add_module("head", nn.Linear(6, 3))
    add_lora(model, ["q_proj", "v_proj"], r=2, alpha=2.0)
    model.head.requires_grad_(True)
    return model


def _nested_lora_model(seed: int = 1) -> nn.Module:
    """Two blocks with LoRA on q_proj and v_proj, an MLP layer and the head frozen, and block 0's
    q_proj adapter frozen as well: the groups must follow requires_grad, not the names alone."""
    torch.manual_seed(seed)
    blocks = [nn.ModuleDict({"q_proj": nn.Linear(5, 5), "v_proj": nn.Linear(5, 5), "fc": nn.Linear(5, 5)})
              for _ in range(2)]
    model = nn.ModuleDict({"blocks": nn.ModuleList(blocks), "head": nn.Linear(5, 2)})
    add_lora(model, ["q_proj", "v_proj"], r=2, alpha=4.0)
    model["blocks"][0]["q_proj"].requires_grad_(False)
    return model


#: (label, the model to group, lr, ratio): the visible cases, then the grade cell's hidden ones
_PLUS_VISIBLE = [(N_("q_proj, v_proj and a head"), _tiny_lora_model, 1e-3, 16.0),
                 (N_("the same model"), _tiny_lora_model, 2e-4, 4.0)]
_PLUS_HIDDEN = [(N_("nested blocks, head frozen, one adapter frozen"), _nested_lora_model, 5e-4, 8.0),
                (N_("ratio 1: one rate for every parameter"), _tiny_lora_model, 3e-3, 1.0)]


def _group_rates(names: dict[int, str], groups) -> dict[str, float] | str:
    rates: dict[str, float] = {}
    for g in groups:
        if "params" not in g or "lr" not in g:
            return t("every group needs a 'params' list and an 'lr'")
        if isinstance(g["params"], torch.Tensor):
            return t("'params' must be a list of parameters, not one tensor: wrap it in [...]")
        for p in g["params"]:
            if id(p) not in names:
                return t("a group holds a tensor that is not a parameter of the model")
            if names[id(p)] in rates:
                return t("{name} is in two groups: each parameter must appear once", name=names[id(p)])
            rates[names[id(p)]] = float(g["lr"])
    return rates


def _rates_by_name(model: nn.Module, groups) -> dict[str, float] | str:
    """name -> the learning rate the groups give it, or a message saying what is wrong."""
    if not isinstance(groups, (list, tuple)) or not all(isinstance(g, dict) for g in groups):
        return t("return a list of dicts like {{'params': [...], 'lr': ...}}, got {kind}",
                 kind=type(groups).__name__)
    try:
        return _group_rates({id(p): n for n, p in model.named_parameters()}, groups)
    except (TypeError, ValueError) as exc:  # e.g. an lr that is not a number, params not iterable
        return t("the groups could not be read ({error}: {exc})", error=type(exc).__name__, exc=exc)


def _lora_plus_problem(fn, model: nn.Module, lr: float, ratio: float) -> str | None:
    try:
        with grading.quiet():
            groups = fn(model, lr, ratio)
    except NotImplementedError:
        return t(NOT_DONE)
    except Exception as exc:  # a learner's bug becomes a message
        return raised(exc)
    rates = _rates_by_name(model, groups)
    if isinstance(rates, str):
        return rates
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    if set(rates) - trainable:
        frozen = sorted(set(rates) - trainable)[0]
        return t("frozen parameters are in the groups ({name}…): pass only those that train", name=frozen)
    if trainable - set(rates):
        return t("{name} trains but is in no group", name=sorted(trainable - set(rates))[0])
    for name, got in rates.items():
        want = lr * ratio if "lora_B" in name else lr
        if not np.isclose(got, want):
            template = N_("{name} gets lr {got:g}, expected {want:g} (lr={lr:g}, ratio={ratio:g})")
            if "lora_A" in name and np.isclose(got, lr * ratio):
                template = N_("{name} gets lr {got:g}, expected {want:g} (lr={lr:g}, ratio={ratio:g}) — only "
                              "B gets the larger rate: B (d_out, r) starts at zero and LoRA+ speeds it up")
            return t(template, name=name, got=got, want=want, lr=lr, ratio=ratio)
    return None


def check_lora_plus_groups(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(model, lr, ratio)` -> optimizer groups: every trainable lora_B at lr·ratio, every other
    trainable parameter at lr, frozen ones left out. `hidden=True` adds the hidden cases."""
    settings = _PLUS_VISIBLE + (_PLUS_HIDDEN if hidden else [])
    passed, first = 0, None
    for i, (label, build, lr, ratio) in enumerate(settings):
        problem = _lora_plus_problem(fn, build(), lr, ratio)
        if problem is None:
            passed += 1
        elif first is None:
            where = N_("hidden case {label}: {problem}") if i >= len(_PLUS_VISIBLE) else \
                N_("case {label}: {problem}")
            first = problem if is_not_done(problem) else t(where, label=t(label), problem=problem)
    n_hidden = len(settings) - len(_PLUS_VISIBLE)
    message = line("lora_plus_groups", first is None, first or cases_passed(passed, len(settings), n_hidden))
    if show:
        print(message)
    return CheckResult("lora_plus_groups", first is None, passed, len(settings), message, n_hidden)
