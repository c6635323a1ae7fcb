"""Checker for `03_lora_linear`'s spot-the-bug exercise: the source notes' (`004`) `LoRALinear`
with its bugs fixed (it runs, B starts at zero, α/r, x → A → B, only A and B get gradients)."""

from __future__ import annotations

import torch
from torch import nn

from lora_lab.course.exercises import CheckResult
from lora_lab.course.exercises.lora_module import (
    HIDDEN,
    VISIBLE,
    Problem,
    _forward_and_grads,
    _no_full_product,
    _over_sizes,
    _param,
    _reference,
    _run,
    _start,
    _steps,
    _trained,
)
from lora_lab.course.i18n import N_, t


def _notes_size(cls, size, seed: int) -> int:
    """Properties of the fixed notes' layer `cls(in_features, out_features, r, alpha)`."""
    d_in, d_out, r, alpha, lead = size
    torch.manual_seed(seed)
    x = torch.randn(*lead, d_in)
    layer = _run(N_("your __init__"), lambda: cls(d_in, d_out, r, alpha))
    A, B = _param(layer, "A", (r, d_in), (d_out, r)), _param(layer, "B", (d_out, r), (r, d_in))
    W, b = (getattr(layer, n, None) for n in ("weight", "bias"))
    if not isinstance(W, torch.Tensor) or tuple(W.shape) != (d_out, d_in) or W.requires_grad:
        raise Problem(t("keep the notes' frozen `weight` ({d_out}, {d_in}) with requires_grad=False",
                        d_out=d_out, d_in=d_in))
    base = nn.Linear(d_in, d_out, bias=b is not None).requires_grad_(False)
    with torch.no_grad():
        base.weight.copy_(W)
        if b is not None:
            base.bias.copy_(b)
    steps = [lambda: _start(layer, base, x, A, B, d_in, kaiming=False), lambda: _trained(B, seed),
             lambda: _forward_and_grads(layer, _reference(base, r, alpha, A.detach(), B.detach()), x, A, B,
                                        names=("A", "B")),
             lambda: _no_weight_grad(W), lambda: _no_full_product(layer, x, d_out, d_in)]
    return _steps(steps)


def _no_weight_grad(W: torch.Tensor) -> None:
    if W.grad is not None:
        raise Problem(t("the frozen weight received a gradient: it must stay requires_grad=False"))


def check_notes_fix(cls, show: bool = True, hidden: bool = False) -> CheckResult:
    """`cls(in_features, out_features, r, alpha)`: the notes' layer (attributes weight, bias, A, B)
    with its bugs fixed: it runs, B starts at zero, the forward adds (α/r)(x Aᵀ)Bᵀ without forming
    B @ A, and only A and B get gradients. `hidden=True` also checks the hidden sizes."""
    sizes = VISIBLE + (HIDDEN if hidden else [])
    return _over_sizes("notes_fix", lambda s, seed: _notes_size(cls, s, seed), sizes, 6, show,
                       hidden=6 * len(HIDDEN) if hidden else 0)
