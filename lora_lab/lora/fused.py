"""The fast LoRA layer: the same equation as `LoRALinear`, with a hand-written autograd function.

`LoRALinear.forward` reads like the paper, base(x) + s · B(A x). On a CPU that costs about
1.4–1.5× the frozen layer, because the low-rank term makes extra passes over the (tokens, d_out)
output: one to scale it, one to add it to base(x), and the same again in the backward pass.
`FusedLoRALinear` accumulates s·(x Aᵀ)Bᵀ into the base GEMM's output with `addmm_` and shares
g·B between grad_x and grad_A, which brings it to about 1.1× (`make bench`). The maths is
unchanged; results agree with `LoRALinear` within float rounding (tests/test_fused.py).

Opt in with `add_lora(..., fused=True)`. The price: it reads `base.weight` and `base.bias`
directly, so forward hooks on the base and `nn.Linear` subclasses with their own `forward` are
bypassed; autocast and the merged state fall back to `LoRALinear.forward`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lora_lab.lora.layer import LoRALinear, autocast_on


class _LoRAMatmul(torch.autograd.Function):
    """x W0ᵀ + b + s · (xd Aᵀ) Bᵀ, the LoRA term accumulated into the base GEMM's output.

    `xd` is dropout(x), or None when the LoRA path sees x itself (then grad_x is fused too).
    Shapes: x, xd (N, d_in), W (d_out, d_in), bias (d_out,) or None, A (r, d_in), B (d_out, r).
    """

    @staticmethod
    def forward(ctx, x, xd, weight, bias, A, B, scaling):
        xl = x if xd is None else xd  # what the LoRA path reads
        xa = xl @ A.t()  # (N, r)
        out = torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()
        out.addmm_(xa, B.t(), alpha=scaling)  # (N, d_out), in place: no extra pass
        ctx.save_for_backward(x if ctx.needs_input_grad[2] else None, weight, xl, A, B, xa)
        ctx.scaling, ctx.fused_x = scaling, xd is None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, xl, A, B, xa = ctx.saved_tensors
        s = ctx.scaling
        need_x, need_xd, need_w, need_b, need_a, need_bb = ctx.needs_input_grad[:6]
        grads = [None] * 7
        gB = g @ B if (need_x or need_xd or need_a) else None  # (N, r): shared by grad_x and grad_A
        if need_x:
            grads[0] = g @ weight  # (N, d_in)
            if ctx.fused_x:
                grads[0].addmm_(gB, A, alpha=s)  # the LoRA path's share, in place
        if need_xd:
            grads[1] = (gB @ A).mul_(s)  # (N, d_in); autograd carries it back through dropout
        if need_w:  # only when someone unfroze the base on purpose
            grads[2] = g.t() @ x  # (d_out, d_in)
        if need_b:
            grads[3] = g.sum(0)  # (d_out,)
        if need_a:
            grads[4] = (gB.t() @ xl).mul_(s)  # (r, d_in)
        if need_bb:
            grads[5] = (xa.t() @ g).t().mul_(s)  # (d_out, r); this order is ~5x faster than gᵀ·xa
        return tuple(grads)


class FusedLoRALinear(LoRALinear):
    """`LoRALinear` with the fused forward and backward of `_LoRAMatmul`; same parameters, same files.

    Shapes: x (..., d_in) -> (..., d_out); lora_A (r, d_in); lora_B (d_out, r).
    """

    def forward(self, x: Tensor) -> Tensor:
        """h = x W0ᵀ + b + scaling · (dropout(x) Aᵀ) Bᵀ in one GEMM's output buffer."""
        self._check_input(x)
        if self.merged or autocast_on(x.device.type):  # the base alone / let autocast pick dtypes
            return super().forward(x)
        xd = self.dropout(x) if self.training and isinstance(self.dropout, nn.Dropout) else None
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # (N, d_in)
        xd2 = None if xd is None else xd.reshape(-1, self.in_features)  # (N, d_in)
        out = _LoRAMatmul.apply(x2, xd2, self.base.weight, self.base.bias, self.lora_A,
                                self.lora_B, self.scaling)
        return out.reshape(*lead, self.out_features)  # (..., d_out)
