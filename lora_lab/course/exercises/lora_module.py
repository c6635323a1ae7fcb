"""Checker for `03_lora_linear`'s module exercise: the learner's own `LoRALinear` (the notes' layer
fixed is checked by `exercises.notes_fix`, with the same properties).

Each checker builds the learner's layer on fresh sizes and tests one property after another (the
shapes, the start, the frozen base, the forward against the package's `LoRALinear`, the gradients,
no (d_out, d_in) tensor in forward, merge and unmerge). A property counts as one case; within one
layer size the first failing property stops that size (the later ones build on it). Nothing the
learner's code raises escapes: it becomes the message.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lora_lab.course.exercises import NOT_DONE, CheckResult, grading
from lora_lab.course.exercises.problems import Problem, _close, _over_sizes, _param, _run, _steps
from lora_lab.course.i18n import N_, t
from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.trace import creates_shape

#: (d_in, d_out, r, alpha, x's leading shape): the visible sizes, then the hidden ones
VISIBLE = [(16, 8, 4, 8.0, (5,))]
HIDDEN = [(7, 12, 3, 1.5, (2, 3)), (32, 20, 1, 16.0, (4,))]


def _scaled_path(got, ref, x) -> None:
    """Explain a forward whose LoRA path is the reference's times a constant (α/r missing or wrong)."""
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(ref(x).shape):
        return
    with torch.no_grad():
        mine, theirs = (got.detach() - ref.base(x)).flatten(), (ref(x) - ref.base(x)).flatten()
        k = float(mine @ theirs / (theirs @ theirs))
        if abs(k - 1) > 1e-3 and torch.allclose(mine, k * theirs, rtol=1e-4, atol=1e-6):
            raise Problem(t("forward with a trained B: the LoRA path is {k:.4g}× the reference's — "
                            "is the scaling α/r (= {scaling:g}) missing, or applied as α or r/α?", k=k,
                            scaling=ref.scaling))


# --- the properties, in the order they are checked ------------------------------------------------

def _init_is_kaiming(A: torch.Tensor, d_in: int) -> None:
    bound = 1 / math.sqrt(d_in)  # kaiming_uniform_(a=√5) draws from U(−1/√d_in, 1/√d_in)
    a = A.detach()
    if bool((a == 0).all()):
        raise Problem(t("A starts at zero: with B = 0 too, neither ever gets a gradient — make A random"))
    if a.unique().numel() < 2 or a.abs().max() > bound * (1 + 1e-4) or a.abs().max() < 0.5 * bound:
        raise Problem(t("A should start Kaiming uniform as loralib and PEFT do, entries in ±1/√d_in = "
                        "±{bound:.3f}: nn.init.kaiming_uniform_(A, a=math.sqrt(5)); got entries up to "
                        "{got:.3g}", bound=bound, got=a.abs().max()))


def _start(layer, base, x, A, B, d_in, kaiming: bool = True) -> None:
    if not bool((B.detach() == 0).all()):
        raise Problem(t("B must start at zero, so that ΔW = BA = 0 and the layer starts equal to its base"))
    if kaiming:
        _init_is_kaiming(A, d_in)
    elif A.detach().unique().numel() < 2:
        raise Problem(t("A must start random (the notes draw it from a normal distribution), not constant"))
    _close(_run(N_("your forward"), lambda: layer(x)), base(x),
           N_("at the start the layer must equal its base"))


def _frozen(layer, base, A, B) -> None:
    trainable = {id(p) for p in layer.parameters() if p.requires_grad}
    if any(p.requires_grad for p in base.parameters()):
        raise Problem(t("the base layer must be frozen: base.requires_grad_(False) (its weight and bias)"))
    if trainable != {id(A), id(B)}:
        raise Problem(t("exactly lora_A and lora_B should be trainable, got {n} trainable tensors",
                        n=len(trainable)))


def _forward_and_grads(layer, ref, x, A, B, names=("lora_A", "lora_B")) -> None:
    got = _run(N_("your forward"), lambda: layer(x))
    _scaled_path(got, ref, x)
    _close(got, ref(x), N_("forward with a trained B"))
    g = torch.randn(*x.shape[:-1], ref.out_features, generator=torch.Generator().manual_seed(1))
    for m in (layer, ref):
        m.zero_grad()
    _run(N_("your backward"), lambda: (layer(x) * g).sum().backward())
    (ref(x) * g).sum().backward()
    for name, mine, theirs in ((names[0], A, ref.lora_A), (names[1], B, ref.lora_B)):
        if mine.grad is None:
            raise Problem(t("`{name}` got no gradient: is it used in forward, and is requires_grad on?",
                            name=name))
        _close(mine.grad, theirs.grad, t("the gradient of {name}", name=name))


def _no_full_product(layer, x, d_out, d_in) -> None:
    if _run(N_("your forward"), lambda: creates_shape(lambda: layer(x), (d_out, d_in))):
        raise Problem(t("your forward builds a ({d_out}, {d_in}) tensor, as big as W0 (B @ A?): "
                        "go x → A → B, (x @ Aᵀ) @ Bᵀ, which never forms it", d_out=d_out, d_in=d_in))


def _merge_round_trip(layer, x, delta: torch.Tensor) -> None:
    W0, before = layer.base.weight.detach().clone(), layer(x).detach()
    _run(N_("your merge()"), layer.merge)
    _close(layer.base.weight, W0 + delta, N_("after merge(), base.weight must be W0 + (α/r)·B @ A"),
           atol=1e-6)
    _close(_run(N_("your forward"), lambda: layer(x)), before,
           N_("once merged, forward must give the same output (and not add the LoRA path a second time)"))
    merged = layer.base.weight.detach().clone()
    try:
        with grading.quiet():
            layer.merge()
    except NotImplementedError as exc:
        raise Problem(t(NOT_DONE)) from exc
    except Exception:  # refusing a second merge is right
        pass
    if not torch.equal(layer.base.weight.detach(), merged):
        raise Problem(t("merging twice added ΔW twice: a second merge() must raise or do nothing"))
    _run(N_("your unmerge()"), layer.unmerge)
    _close(layer.base.weight, W0, N_("after unmerge(), base.weight must be W0 again"), atol=1e-6)
    _close(_run(N_("your forward"), lambda: layer(x)), before, N_("after unmerge(), the same output"))


def _trained(layer_B: torch.Tensor, seed: int) -> None:
    with torch.no_grad():  # stands in for training: B moves away from zero
        layer_B.copy_(0.1 * torch.randn(layer_B.shape, generator=torch.Generator().manual_seed(seed)))


def _reference(base: nn.Linear, r: int, alpha: float, A, B) -> LoRALinear:
    ref = LoRALinear(_copy(base), r=r, alpha=alpha)
    with torch.no_grad():
        ref.lora_A.copy_(A)
        ref.lora_B.copy_(B)
    return ref


def _copy(base: nn.Linear) -> nn.Linear:
    twin = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None)
    twin.load_state_dict(base.state_dict())
    return twin.requires_grad_(False)


def _lora_linear_size(cls, size, seed: int) -> int:
    """Properties of `cls(base, r, alpha)` that hold at one size, in order; raises at the first miss."""
    d_in, d_out, r, alpha, lead = size
    torch.manual_seed(seed)
    base, x = nn.Linear(d_in, d_out), torch.randn(*lead, d_in)
    reference_base = _copy(base)
    layer = _run(N_("your __init__"), lambda: cls(base, r, alpha))
    if getattr(layer, "base", None) is not base:
        raise Problem(t("keep the wrapped layer as `self.base` (the very nn.Linear you were given)"))
    A, B = _param(layer, "lora_A", (r, d_in), (d_out, r)), _param(layer, "lora_B", (d_out, r), (r, d_in))
    steps = [lambda: _start(layer, reference_base, x, A, B, d_in), lambda: _frozen(layer, base, A, B),
             lambda: _trained(B, seed),
             lambda: _forward_and_grads(layer, _reference(reference_base, r, alpha, A.detach(), B.detach()),
                                        x, A, B),
             lambda: _no_full_product(layer, x, d_out, d_in),
             lambda: _merge_round_trip(layer, x, (alpha / r) * B.detach() @ A.detach())]
    return _steps(steps)


def check_lora_linear(cls, show: bool = True, hidden: bool = False) -> CheckResult:
    """`cls(base, r, alpha)` must be a LoRA layer: base frozen as `self.base`, `lora_A` (r, d_in)
    Kaiming uniform, `lora_B` (d_out, r) zero, forward x → A → B scaled by α/r and equal to
    `lora_lab.lora.layer.LoRALinear`, gradients in A and B only, `merge()` / `unmerge()` guarded.
    `hidden=True` also checks the grade cell's hidden sizes."""
    sizes = VISIBLE + (HIDDEN if hidden else [])
    return _over_sizes("lora_linear", lambda s, seed: _lora_linear_size(cls, s, seed), sizes, 7, show,
                       hidden=7 * len(HIDDEN) if hidden else 0)

