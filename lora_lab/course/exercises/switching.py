"""Checkers for `08_deploy_and_switch` §8.5: the learner's `unmerge` and serving tasks in turn, run
on the package's `LoRALinear` at fresh sizes. Each property is one case; within a size the first
that fails stops that size. Nothing the learner's code raises escapes: it becomes the message."""

from __future__ import annotations

import torch
from torch import nn

from lora_lab.course.exercises import NOT_DONE, CheckResult, cases_passed, grading, is_not_done, report
from lora_lab.course.exercises.lora_module import Problem, _run
from lora_lab.course.i18n import N_, as_msg, t
from lora_lab.lora.layer import LoRALinear

#: (d_in, d_out, r, alpha): the visible size, then the grade cell's hidden ones
VISIBLE = [(16, 8, 4, 8.0)]
HIDDEN = [(7, 12, 3, 1.5), (32, 20, 1, 16.0)]
UNMERGE_PROPERTIES, SERVE_PROPERTIES = 4, 4


class _Recording(LoRALinear):
    """The package's layer, noting for every forward whether it ran merged."""

    def forward(self, x):
        self.served_merged.append(self.merged)
        return super().forward(x)


def _layer(size, seed: int, trained: bool = True) -> tuple[_Recording, torch.Tensor]:
    """A LoRA layer of `size` with B moved off zero (as if trained), and an input x (5, d_in)."""
    d_in, d_out, r, alpha = size
    gen = torch.Generator().manual_seed(seed)
    base = nn.Linear(d_in, d_out)
    with torch.no_grad():
        base.weight.copy_(torch.randn(d_out, d_in, generator=gen))
        base.bias.copy_(torch.randn(d_out, generator=gen))
    layer = _Recording(base, r=r, alpha=alpha)
    layer.served_merged = []
    if trained:
        with torch.no_grad():
            layer.lora_A.copy_(torch.randn(r, d_in, generator=gen))
            layer.lora_B.copy_(torch.randn(d_out, r, generator=gen))
    return layer, torch.randn(5, d_in, generator=gen)


def _gap(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.detach().double() - want.detach().double()).abs().max())


def _unmerged_weight(layer, W0, delta) -> None:
    """After the learner's unmerge: base.weight must be W0 again; name the usual slips."""
    W = layer.base.weight.detach()
    if _gap(W, W0) <= 1e-5:
        return
    hints = [(W0 + delta, N_("base.weight was not changed: subtract ΔW from it in place "
                             "(with torch.no_grad(): layer.base.weight -= …), not into a new tensor")),
             (W0 + 2 * delta, N_("ΔW was added again: unmerge subtracts it")),
             (W0 + delta - delta / layer.scaling, N_("ΔW is scaling · B @ A: the scaling α/r is missing")),
             (W0 + delta - delta * layer.scaling, N_("the scaling is applied twice: ΔW = scaling · B @ A"))]
    for wrong, hint in hints:
        if tuple(W.shape) == tuple(wrong.shape) and _gap(W, wrong) <= 1e-5:
            raise Problem(t("after unmerge, base.weight is not W0 — {hint}", hint=t(hint)))
    raise Problem(t("after unmerge, base.weight must be W0 again (largest difference {err:.3g})",
                    err=_gap(W, W0)))


def _refuses_twice(fn, layer) -> None:
    """A second unmerge must raise and leave the weight alone (never subtract ΔW twice)."""
    W = layer.base.weight.detach().clone()
    try:
        with grading.quiet():
            fn(layer)
    except NotImplementedError as exc:
        raise Problem(t(NOT_DONE)) from exc
    except Exception:  # refusing is right
        if not torch.equal(layer.base.weight.detach(), W):
            raise Problem(t("unmerge on an unmerged layer changed base.weight before refusing")) from None
        return
    if torch.equal(layer.base.weight.detach(), W):
        raise Problem(t("unmerge on a layer that is not merged must refuse (raise an error): it would "
                        "subtract ΔW a second time"))
    raise Problem(t("unmerge on a layer that is not merged must refuse (raise an error): it would "
                    "subtract ΔW a second time, and yours did"))


def _unmerge_size(fn, size, seed: int) -> int:
    layer, x = _layer(size, seed)
    W0, before = layer.base.weight.detach().clone(), layer(x).detach()
    delta = layer.delta_weight().detach().clone()
    layer.merge()
    _run(N_("your unmerge"), lambda: fn(layer))
    steps = [lambda: _unmerged_weight(layer, W0, delta),
             lambda: _flag_cleared(layer),
             lambda: _same_output(layer(x), before, N_("after unmerge, forward")),
             lambda: _refuses_twice(fn, layer)]
    return _steps(steps)


def _flag_cleared(layer) -> None:
    if layer.merged:
        raise Problem(t("layer.merged is still True: set it to False, or forward skips the LoRA path "
                        "(and merge() refuses to merge again)"))


def _same_output(got, want, what) -> None:
    """`what` is a template (or a Msg) naming the output being compared."""
    what = as_msg(what)
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        raise Problem(t("{what}: expected a tensor of shape {want}, got {got}", what=what,
                        want=tuple(want.shape), got=shape))
    if not torch.isfinite(got).all():
        raise Problem(t("{what}: the output holds NaN or inf", what=what))
    if not torch.allclose(got.detach().double(), want.detach().double(), rtol=1e-4, atol=1e-4):
        raise Problem(t("{what}: differs from the unmerged layer's output (largest difference {err:.3g})",
                        what=what, err=_gap(got, want)))


def _steps(steps, start: int = 0) -> int:
    """Run the properties in order (`start` already held); a Problem carries how many held."""
    for done, step in enumerate(steps):
        try:
            step()
        except Problem as problem:
            problem.passed = start + done
            raise
    return start + len(steps)


def _adapters(size, n: int, seed: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """n trained-looking adapters (A (r, d_in), B (d_out, r)) for a layer of `size`."""
    d_in, d_out, r, _ = size
    gen = torch.Generator().manual_seed(100 + seed)
    return [(torch.randn(r, d_in, generator=gen), torch.randn(d_out, r, generator=gen)) for _ in range(n)]


def _unmerged_output(W0, bias, A, B, scaling, x) -> torch.Tensor:
    """What the task's own unmerged layer gives: W0 x + b + scaling · B (A x), in float64."""
    x, W0, bias, A, B = (t.detach().double() for t in (x, W0, bias, A, B))
    return x @ W0.T + bias + scaling * (x @ A.T) @ B.T  # (n, d_out)


def _outputs(outputs, n: int, d_out: int) -> list[torch.Tensor]:
    if not isinstance(outputs, (list, tuple)) or len(outputs) != n:
        got = t("a {kind} of {n}", kind=type(outputs).__name__, n=len(outputs)) \
            if isinstance(outputs, (list, tuple)) else type(outputs).__name__
        raise Problem(t("return one output per adapter, a list of {n} tensors; got {got}", n=n, got=got))
    for out in outputs:
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (5, d_out):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise Problem(t("each output must be the layer's output on x, shape (5, {d_out}); got {got}",
                            d_out=d_out, got=shape))
    return list(outputs)


def _each_task(outputs, want, old, W0, bias, x) -> None:
    """Output i must be adapter i's unmerged output; name the usual slips."""
    base_out = x.double() @ W0.double().T + bias.double()
    for i, (got, expected) in enumerate(zip(outputs, want, strict=True)):
        if torch.allclose(got.detach().double(), expected, rtol=1e-4, atol=1e-4):
            continue
        stacked = expected + sum(want[j] - base_out for j in range(i))
        slips = [(base_out, N_("ΔW is missing: load the adapter's A and B, then merge()")),
                 (want[i - 1] if i else old, N_("that is the adapter the layer held before: copy each A and "
                                                "B into layer.lora_A and layer.lora_B before merging")),
                 (stacked, N_("W still held the previous task's ΔW: unmerge after serving a "
                              "task, before merging the next"))]
        for wrong, hint in slips:
            if torch.allclose(got.detach().double(), wrong, rtol=1e-4, atol=1e-4):
                raise Problem(t("task {i}: {hint}", i=i, hint=t(hint)))
        _same_output(got, expected, t("task {i}'s output", i=i))


def _served_merged(layer, n: int) -> None:
    if len(layer.served_merged) < n or not all(layer.served_merged):
        raise Problem(t("serve each task merged: call layer.merge() before computing its output — a merged "
                        "layer runs the base's operations, no added latency (the outputs agree either way)"))


def _back_to_w0(layer, W0) -> None:
    if layer.merged:
        raise Problem(t("the layer is still merged at the end: unmerge after serving each task"))
    if _gap(layer.base.weight, W0) > 1e-5:
        raise Problem(t("after serving every task, base.weight must be W0 again within float rounding; "
                        "largest difference {err:.3g}", err=_gap(layer.base.weight, W0)))


def _serve_size(fn, size, seed: int, n: int = 2) -> int:
    layer, x = _layer(size, seed)
    adapters = _adapters(size, n + seed, seed)
    W0, bias = layer.base.weight.detach().clone(), layer.base.bias.detach().clone()
    want = [_unmerged_output(W0, bias, A, B, layer.scaling, x) for A, B in adapters]
    old = _unmerged_output(W0, bias, layer.lora_A, layer.lora_B, layer.scaling, x)
    given = [(A.clone(), B.clone()) for A, B in adapters]
    outputs = _outputs(_run(N_("your serve_in_turn"), lambda: fn(layer, given, x)), len(adapters), size[1])
    steps = [lambda: _each_task(outputs, want, old, W0, bias, x),
             lambda: _served_merged(layer, len(adapters)),
             lambda: _back_to_w0(layer, W0)]
    return _steps(steps, start=1)


def _over_sizes(name: str, per_size, sizes, per: int, show: bool, hidden: int) -> CheckResult:
    """Check every size (`per` properties each); report the first failure and the cases passed."""
    cases, total = 0, per * len(sizes)
    for i, size in enumerate(sizes):
        try:
            cases += per_size(size, seed=i)
        except Problem as problem:
            where = N_("hidden {label}: {problem}") if i >= len(VISIBLE) else N_("{label}: {problem}")
            label = f"d_in={size[0]}, d_out={size[1]}, r={size[2]}, α={size[3]:g}"
            text = problem.text if is_not_done(problem.text) else t(where, label=label, problem=problem.text)
            return report(name, False, cases + getattr(problem, "passed", 0), total, text, show, hidden)
    return report(name, True, cases, total, cases_passed(cases, total, hidden), show, hidden)



def check_unmerge(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(layer)` on a merged `LoRALinear`: W0 = W − scaling·B@A in place, `layer.merged` False,
    the unmerged output back; on a layer that is not merged it must raise and change nothing.
    `hidden=True` also checks the grade cell's hidden sizes."""
    if not callable(fn):
        return report("unmerge", False, 0, UNMERGE_PROPERTIES,
                       t("expected a function, got {kind}", kind=type(fn).__name__), show, 0)
    return _over_sizes("unmerge", lambda s, seed: _unmerge_size(fn, s, seed), VISIBLE + HIDDEN * hidden,
                       UNMERGE_PROPERTIES, show, UNMERGE_PROPERTIES * len(HIDDEN) if hidden else 0)


def check_serve_in_turn(fn, show: bool = True, hidden: bool = False) -> CheckResult:
    """`fn(layer, adapters, x)`: for each (A, B) in `adapters`, load it into the unmerged `layer`,
    merge, compute `layer(x)`, unmerge; return the outputs. Checked: each equals its adapter's
    unmerged output, each was computed merged, and the layer ends unmerged with W0 back.
    `hidden=True` also checks hidden sizes with more adapters."""
    if not callable(fn):
        return report("serve_in_turn", False, 0, SERVE_PROPERTIES,
                       t("expected a function, got {kind}", kind=type(fn).__name__), show, 0)
    return _over_sizes("serve_in_turn", lambda s, seed: _serve_size(fn, s, seed), VISIBLE + HIDDEN * hidden,
                       SERVE_PROPERTIES, show, SERVE_PROPERTIES * len(HIDDEN) if hidden else 0)
