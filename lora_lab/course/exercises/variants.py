"""Checkers for notebook 10: rsLoRA's scaling, DoRA's weight, PiSSA's init and NF4 rounding.
Each takes `hidden=True` for its grade cell's hidden cases."""

from __future__ import annotations

import math

import numpy as np
import torch

from lora_lab.course.exercises import NOT_DONE, Case, CheckResult, Mistake, line, raised, run_cases
from lora_lab.course.i18n import t
from lora_lab.maths.nf4 import nf4_levels


def _scaling_cases(settings) -> list[Case]:
    return [Case(f"alpha={a:g}, r={r}, rslora={rs}", (a, r, rs), a / math.sqrt(r) if rs else a / r)
            for a, r, rs in settings]


def check_lora_scaling(fn, hidden: bool = False) -> CheckResult:
    """`fn(alpha, r, rslora)`: the LoRA path's multiplier, α/r, or α/√r when `rslora`.
    `hidden=True` adds the grade cell's hidden cases (other α and r, both rules)."""
    cases = _scaling_cases([(16.0, 4, True), (8.0, 64, True), (8.0, 4, False), (32.0, 16, True),
                            (1.0, 1, True)])
    more = _scaling_cases([(12.0, 9, True), (5.0, 10, False), (3.0, 2, True), (64.0, 128, False)]
                          if hidden else [])
    mistakes = [
        Mistake(lambda a, r, rs: a / r, "with rslora=True the divisor is √r, not r"),
        Mistake(lambda a, r, rs: a * math.sqrt(r) if rs else a / r, "rsLoRA divides α by √r; you multiplied"),
        Mistake(lambda a, r, rs: math.sqrt(a / r) if rs else a / r, "only r goes under the root: α/√r"),
        Mistake(lambda a, r, rs: a / math.sqrt(r), "without rslora the scaling stays the paper's α/r"),
    ]
    return run_cases("lora_scaling", fn, cases, mistakes, hidden=more)


def _dora_reference(W0, A, B, m, s, dim=1):
    V = W0 + s * (B @ A)  # (d_out, d_in)
    return m[:, None] * V / torch.linalg.norm(V, dim=dim, keepdim=True)


def _dora_cases(shapes, seed: int = 0) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    cases = []
    for d_out, d_in, r, s in shapes:
        args = (torch.randn(d_out, d_in, generator=gen), torch.randn(r, d_in, generator=gen),
                torch.randn(d_out, r, generator=gen), torch.rand(d_out, generator=gen) + 0.5, s)
        cases.append(Case(f"W0 ({d_out}, {d_in}), r={r}, s={s}", args, _dora_reference(*args)))
    return cases


def check_dora_weight(fn, hidden: bool = False) -> CheckResult:
    """`fn(W0, A, B, m, s)`: DoRA's weight m ⊙ (W0 + s·BA) / ‖W0 + s·BA‖, norm per output row.
    Shapes: W0 (d_out, d_in), A (r, d_in), B (d_out, r), m (d_out,) -> (d_out, d_in).
    `hidden=True` adds the grade cell's hidden cases (wide and tall weights, larger r)."""
    cases = _dora_cases([(5, 5, 2, 2.0), (6, 4, 2, 0.5), (3, 7, 1, 1.0)])  # square first: see mistakes
    more = _dora_cases([(4, 9, 3, 0.25), (8, 3, 3, 4.0)], seed=1) if hidden else []
    mistakes = [
        Mistake(lambda W0, A, B, m, s: m[:, None] * (W0 + s * B @ A) / (W0 + s * B @ A).norm(dim=0),
                "the norm is per output row (dim=1 of a (d_out, d_in) weight), one per entry of m; the "
                "DoRA paper says 'column' because it writes W the other way round (d_in × d_out)"),
        Mistake(lambda W0, A, B, m, s: _dora_reference(W0, A, B, m, 1.0), "the low-rank update is s·B A"),
        Mistake(lambda W0, A, B, m, s: _dora_reference(W0, A, B, torch.ones_like(m), s),
                "that is only the direction: multiply each row by its magnitude m"),
        Mistake(lambda W0, A, B, m, s: m[:, None] * (W0 + s * B @ A) / torch.linalg.norm(W0 + s * B @ A),
                "one Frobenius norm for the whole matrix: DoRA normalises each output row on its own"),
        Mistake(lambda W0, A, B, m, s: m[:, None] * (W0 + s * B @ A),
                "divide W0 + s·BA by its row norms first, so that m alone sets each row's length"),
        Mistake(lambda W0, A, B, m, s: m[:, None] * W0 / W0.norm(dim=1, keepdim=True) + s * B @ A,
                "normalise the updated weight W0 + s·BA, not W0 alone"),
    ]
    return run_cases("dora_weight", fn, cases, mistakes, rtol=1e-4, atol=1e-5, hidden=more)


def _pissa_reference(W0, r, s, smallest=False, split=True, divide=True):
    U, S, Vh = torch.linalg.svd(W0, full_matrices=False)
    idx = torch.arange(S.numel() - r, S.numel()) if smallest else torch.arange(r)
    Sr = S[idx] / (s if divide else 1.0)
    A = (Sr.sqrt()[:, None] if split else 1.0) * Vh[idx]  # (r, d_in)
    B = U[:, idx] * (Sr.sqrt() if split else Sr)  # (d_out, r)
    return A, B, W0 - s * (B @ A)


def _pissa_summary(fn):
    """What the check compares: s·BA, the residual, AAᵀ and BᵀB (sign-free: SVD signs are arbitrary)."""
    def summary(W0, r, s):
        A, B, residual = (torch.as_tensor(t).double() for t in fn(W0, r, s))
        parts = [s * (B @ A), residual, A @ A.t(), B.t() @ B]
        return np.concatenate([p.detach().numpy().ravel() for p in parts])
    return summary


def _shape_problem(fn, W0, r, s) -> str | None:
    try:
        out = fn(W0, r, s)
    except NotImplementedError:
        return t(NOT_DONE)
    except Exception as exc:
        return raised(exc)
    if not isinstance(out, (tuple, list)) or len(out) != 3:
        return t("return three tensors (A, B, W_res), got {kind}", kind=type(out).__name__)
    (d_out, d_in), want = W0.shape, ((r, W0.shape[1]), (W0.shape[0], r), tuple(W0.shape))
    got = [tuple(getattr(t, "shape", ())) for t in out]
    for name, g, shape in zip(("A", "B", "W_res"), got, want, strict=True):
        if g != shape:
            swapped = g == shape[::-1] or got[:2] == [want[1], want[0]]
            return t("{name} must have shape {want} (W0 is ({d_out}, {d_in}), r={r}), got {got} — did you "
                     "swap A and B, or transpose?" if swapped else
                     "{name} must have shape {want} (W0 is ({d_out}, {d_in}), r={r}), got {got}",
                     name=name, want=shape, d_out=d_out, d_in=d_in, r=r, got=g)
    return None


def _pissa_cases(settings, seed: int = 0) -> list[Case]:
    gen = torch.Generator().manual_seed(seed)
    ref = _pissa_summary(lambda W0, r, s: _pissa_reference(W0, r, s))
    W0s = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape, _, _ in settings]
    return [Case(f"W0 {tuple(W0.shape)}, r={r}, s={s}", (W0, r, s), ref(W0, r, s))
            for W0, (_, r, s) in zip(W0s, settings, strict=True)]


def check_pissa_init(fn, hidden: bool = False) -> CheckResult:
    """`fn(W0, r, s)` -> (A, B, W_res): A = √(Σr/s) Vrᵀ, B = Ur √(Σr/s), W_res = W0 − s·BA.
    Shapes: W0 (d_out, d_in) -> A (r, d_in), B (d_out, r), W_res (d_out, d_in).
    `hidden=True` adds the grade cell's hidden cases (other shapes, r up to min(d_out, d_in))."""
    cases = _pissa_cases([((6, 8), 2, 2.0), ((8, 5), 3, 0.5), ((6, 6), 1, 1.0)])
    more = _pissa_cases([((9, 4), 4, 0.25), ((5, 10), 3, 3.0)], seed=1) if hidden else []
    problem = _shape_problem(fn, *cases[0].args)
    if problem is not None:
        message = line("pissa_init", False, problem)
        print(message)
        return CheckResult("pissa_init", False, 0, len(cases) + len(more), message, len(more))
    mistakes = [
        Mistake(_pissa_summary(lambda W0, r, s: _pissa_reference(W0, r, s, smallest=True)),
                "you took the r smallest singular values; PiSSA trains the principal (largest) ones"),
        Mistake(_pissa_summary(lambda W0, r, s: _pissa_reference(W0, r, s, divide=False)),
                "s·B A must equal U_r Σ_r V_rᵀ: divide Σ_r by s before splitting it"),
        Mistake(_pissa_summary(lambda W0, r, s: (*_pissa_reference(W0, r, s)[:2], W0)),
                "the frozen base must become the residual W0 − s·BA, or the model changes at init"),
        Mistake(_pissa_summary(lambda W0, r, s: _pissa_reference(W0, r, s, split=False)),
                "B A is right, but PiSSA splits √(Σ_r/s) between A and B so both start equally large"),
    ]
    return run_cases("pissa_init", _pissa_summary(fn), cases, mistakes, rtol=1e-5, atol=1e-6, hidden=more)


def _nf4_reference(w, levels):
    absmax = w.abs().max()
    idx = (w[:, None] / absmax - levels[None, :]).abs().argmin(dim=1)  # nearest level
    return levels[idx] * absmax


def _block_cases(blocks, levels) -> list[Case]:
    return [Case(t("block of {n} (absmax {absmax:.3f})", n=w.numel(), absmax=w.abs().max()), (w, levels),
                 _nf4_reference(w, levels)) for w in blocks]


def check_quantize_block(fn, hidden: bool = False) -> CheckResult:
    """`fn(w, levels)`: one block rounded the absmax way: levels[nearest to w/absmax] · absmax.
    Shapes: w (n,), levels (16,) sorted -> (n,). `hidden=True` adds the grade cell's hidden
    cases (a block whose absmax is negative, a tiny scale, uniform int4 levels)."""
    gen, levels = torch.Generator().manual_seed(0), nf4_levels()
    cases = _block_cases([torch.randn(64, generator=gen), 3.0 * torch.randn(16, generator=gen),
                          torch.tensor([0.5, -2.0, 0.1, 1.3])], levels)
    more = []
    if hidden:
        gen = torch.Generator().manual_seed(1)
        blocks = [torch.tensor([-3.0, 1.0, 0.2, -0.7, 2.9]), 1e-3 * torch.randn(32, generator=gen)]
        more = (_block_cases(blocks, levels)
                + _block_cases([torch.randn(24, generator=gen)], torch.linspace(-1.0, 1.0, 16)))

    def floor(w, lv):
        idx = (torch.searchsorted(lv, w / w.abs().max(), right=True) - 1).clamp(0, lv.numel() - 1)
        return lv[idx] * w.abs().max()

    mistakes = [
        Mistake(lambda w, lv: lv[(w[:, None] / w.abs().max() - lv).abs().argmin(1)],
                "multiply the level back by the block's absmax"),
        Mistake(lambda w, lv: lv[(w[:, None] - lv).abs().argmin(1)] * w.abs().max(),
                "divide w by the absmax before looking for the nearest level"),
        Mistake(floor, "round to the nearest level, not down to the level below"),
        Mistake(lambda w, lv: _nf4_reference(w, lv) / w.abs().max() * w.abs().mean(),
                "the scale is the block's largest |w| (absmax), so the block fits in [-1, 1]"),
    ]
    return run_cases("quantize_block", fn, cases, mistakes, rtol=1e-5, atol=1e-6, hidden=more)
