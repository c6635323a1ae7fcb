"""Checkers for `04_lora_attention`'s two module exercises: the learner's own `add_lora`, checked
on a model they have not seen (other names, other nesting), and the source notes' (`004`)
`LoRAAttention` with W_O frozen and α/r added."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from lora_lab.course.exercises import CheckResult
from lora_lab.course.exercises.lora_module import Problem, _close, _over_sizes, _param, _run, _steps
from lora_lab.course.i18n import N_, t


class Unseen(nn.Module):
    """A model the learner never saw: blocks in a ModuleList of ModuleDicts, an MLP in a Sequential.
    With `trap`, a layer called `subquery` that a bare `endswith("query")` would also pick."""

    def __init__(self, d: int = 10, trap: bool = False):
        super().__init__()
        self.embed = nn.Linear(6, d)
        self.layers = nn.ModuleList(nn.ModuleDict({
            "query": nn.Linear(d, d), "value": nn.Linear(d, d),
            "mlp": nn.Sequential(nn.Linear(d, 14), nn.GELU(), nn.Linear(14, d))}) for _ in range(2))
        self.subquery = nn.Linear(d, d) if trap else None
        self.norm, self.head = nn.LayerNorm(d), nn.Linear(d, 3)

    def forward(self, x):  # x (..., 6) -> (..., 3)
        h = self.embed(x)
        for layer in self.layers:
            h = h + layer["value"](torch.tanh(layer["query"](h)))
            h = h + layer["mlp"](h)
        if self.subquery is not None:
            h = h + self.subquery(h)
        return self.head(self.norm(h))


#: (targets, r, alpha, trap, the layers that must get LoRA)
VISIBLE = [(["query", "value"], 2, 4.0, False, {"layers.0.query", "layers.0.value", "layers.1.query",
                                                 "layers.1.value"}),
           (["mlp.2"], 3, 3.0, False, {"layers.0.mlp.2", "layers.1.mlp.2"})]
HIDDEN = [(["1.value", "head"], 1, 2.0, False, {"layers.1.value", "head"}),
          (["query"], 2, 2.0, True, {"layers.0.query", "layers.1.query"})]


def _adapted(model) -> set[str]:
    return {n for n, m in model.named_modules() if isinstance(getattr(m, "lora_A", None), torch.Tensor)}


def _which(model, want: set[str]) -> None:
    got = _adapted(model)
    if got == want:
        return
    template = N_("expected LoRA on {want}, got {got}")
    if not got:
        template = N_("expected LoRA on {want}, got {got} — replace each chosen layer on its parent: "
                      "setattr(parent, child_name, LoRALinear(...))")
    elif "subquery" in got:
        template = N_("expected LoRA on {want}, got {got} — a bare endswith also takes 'subquery' for "
                      "'query': the name must equal the target or end with '.' + target")
    elif got > want:
        template = N_("expected LoRA on {want}, got {got} — only layers whose name equals a target or ends "
                      "with '.' + target")
    raise Problem(t(template, want=sorted(want), got=sorted(got)))


def _frozen(model, original, want: set[str], r: int) -> None:
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    others = [n for n in trainable if not n.rsplit(".", 1)[-1].startswith(("lora_A", "lora_B"))]
    if others:
        raise Problem(t("everything but A and B must be frozen; still trainable: {names}", names=others[:3]))
    expected = sum(r * (original.get_submodule(n).in_features + original.get_submodule(n).out_features)
                   for n in want)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if count != expected:
        raise Problem(t("expected {want} trainable parameters (r·(d_in + d_out) per layer), got {got}",
                        want=expected, got=count))


def _add_lora_case(fn, case, seed: int) -> int:
    targets, r, alpha, trap, want = case
    torch.manual_seed(seed)
    model, x = Unseen(trap=trap), torch.randn(4, 6)
    original = copy.deepcopy(model).requires_grad_(False)
    out = _run(N_("your add_lora"), lambda: fn(model, list(targets), r, alpha))
    if not isinstance(out, nn.Module):
        raise Problem(t("return the model (the same object, adapted in place), got {kind}",
                        kind=type(out).__name__))
    steps = [lambda: _which(out, want), lambda: _frozen(out, original, want, r),
             lambda: _close(_run(N_("the adapted model"), lambda: out(x)), original(x),
                            N_("at the start the adapted model must compute what the base model computes"))]
    return _steps(steps)


def check_add_lora(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(model, targets, r, alpha)` must put a LoRA layer on every `nn.Linear` whose name equals
    a target or ends with '.' + target, freeze everything else and return the model; checked on
    `Unseen`, a model the notebook never shows. `hidden=True` adds the hidden cases."""
    cases = VISIBLE + (HIDDEN if hidden else [])
    return _over_sizes("add_lora", lambda c, seed: _add_lora_case(fn, c, seed), cases, 4, show,
                       hidden=4 * len(HIDDEN) if hidden else 0, label=lambda c: f"targets={c[0]}, r={c[1]}")


# --- the notes' LoRAAttention, fixed ----------------------------------------------------------------

def _attention(m, q, k, v, s: float):
    """The notes' one-head attention with LoRA on W_Q, W_K, W_V scaled by s.  (B, T, d) -> (B, T, d)."""
    Q = m.W_Q(q) + s * (q @ m.A_Q.T) @ m.B_Q.T
    K = m.W_K(k) + s * (k @ m.A_K.T) @ m.B_K.T
    V = m.W_V(v) + s * (v @ m.A_V.T) @ m.B_V.T
    weights = torch.softmax(Q @ K.transpose(-2, -1) / math.sqrt(Q.shape[-1]), dim=-1)  # (B, T, T)
    return m.W_O(weights @ V)


FACTORS = ("A_Q", "B_Q", "A_K", "B_K", "A_V", "B_V")


def _attention_case(cls, case, seed: int) -> int:
    d, r, alpha = case
    torch.manual_seed(seed)
    x = torch.randn(2, 5, d)
    m = _run(N_("your __init__"), lambda: cls(d, r, alpha))
    for name in FACTORS:
        _param(m, name, (r, d) if name[0] == "A" else (d, r))
    trainable = sorted(n for n, p in m.named_parameters() if p.requires_grad)
    if trainable != sorted(FACTORS):
        extra = [n for n in trainable if n not in FACTORS]
        template = N_("exactly the six LoRA factors {factors} must train, got {got}")
        if any("W_O" in n for n in extra):
            template = N_("exactly the six LoRA factors {factors} must train, got {got} — W_O is still "
                          "trainable: freeze it as W_Q, W_K, W_V are")
        raise Problem(t(template, factors=list(FACTORS), got=trainable))
    steps = [lambda: _close(_run(N_("your forward"), lambda: m(x, x, x)), _attention(m, x, x, x, 0.0),
                            N_("B starts at zero, so at the start the output is the frozen attention's")),
             lambda: _train(m, seed),
             lambda: _scaled(_run(N_("your forward"), lambda: m(x, x, x)), m, x, alpha / r)]
    return _steps(steps)


def _train(m, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in FACTORS[1::2]:
            getattr(m, name).copy_(0.1 * torch.randn(getattr(m, name).shape, generator=g))


def _scaled(got, m, x, scaling: float) -> None:
    with torch.no_grad():
        if isinstance(got, torch.Tensor) and torch.allclose(got, _attention(m, x, x, x, 1.0), atol=1e-5) \
                and not math.isclose(scaling, 1.0):
            raise Problem(t("the LoRA path is not scaled: multiply (x Aᵀ)Bᵀ by α/r (= {scaling:g} here)",
                            scaling=scaling))
        _close(got, _attention(m, x, x, x, scaling), N_("forward with trained B's"))


def check_attention_fix(cls, show: bool = True, hidden: bool = False) -> CheckResult:
    """`cls(embed_dim, r, alpha)`: the notes' LoRAAttention (names W_Q … W_O, A_Q, B_Q, …) with W_O
    frozen and the LoRA paths scaled by α/r. `hidden=True` adds the hidden sizes."""
    sizes = [(16, 2, 4.0)] + ([(12, 3, 1.5), (8, 1, 8.0)] if hidden else [])
    return _over_sizes("attention_fix", lambda c, seed: _attention_case(cls, c, seed), sizes, 4, show,
                       hidden=8 if hidden else 0, label=lambda c: f"embed_dim={c[0]}, r={c[1]}, α={c[2]:g}")
