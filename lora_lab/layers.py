"""The LoRA linear layer: h = W0 x + (alpha / r) · B A x, with W0 frozen (Hu et al. 2021, §4.1).

Orientation follows `nn.Linear`: W0 is (d_out, d_in), A is (r, d_in), B is (d_out, r).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lora_lab._checks import check_choice, check_positive, check_probability, check_rank

INITS = ("kaiming", "gaussian")


class _LoRAMatmul(torch.autograd.Function):
    """base(x) + s · (x Aᵀ) Bᵀ with the LoRA term accumulated into the base GEMM's output.

    Unfused code (PEFT, loralib) makes extra passes over the (tokens, d_out) output: one to scale,
    one to add, and again in the backward pass. Here `addmm_` adds s·(xAᵀ)Bᵀ inside the GEMM
    (beta=1), and the backward reuses g·B for both grad_x and grad_A. The maths is unchanged.
    Shapes: x (N, d_in), W (d_out, d_in), bias (d_out,) or None, A (r, d_in), B (d_out, r).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, A, B, scaling):
        xa = x @ A.t()  # (N, r)
        out = torch.addmm(bias, x, weight.t()) if bias is not None else x @ weight.t()
        out.addmm_(xa, B.t(), alpha=scaling)  # (N, d_out), in place: no extra pass
        ctx.save_for_backward(x, weight, A, B, xa)
        ctx.scaling, ctx.has_bias = scaling, bias is not None
        return out

    @staticmethod
    def backward(ctx, g):
        x, weight, A, B, xa = ctx.saved_tensors
        s = ctx.scaling
        need_x, need_w, need_b, need_a, need_bb = ctx.needs_input_grad[:5]
        gB = g @ B  # (N, r): shared by grad_x and grad_A
        grad_x = grad_w = grad_bias = grad_a = grad_bb = None
        if need_x:
            grad_x = (g @ weight).addmm_(gB, A, alpha=s)  # (N, d_in)
        if need_w:  # only when someone unfroze the base on purpose
            grad_w = g.t() @ x
        if need_b and ctx.has_bias:
            grad_bias = g.sum(0)
        if need_a:
            grad_a = (gB.t() @ x).mul_(s)  # (r, d_in)
        if need_bb:
            grad_bb = (xa.t() @ g).t().mul_(s)  # (d_out, r); this order is ~5x faster than gᵀ·xa
        return grad_x, grad_w, grad_bias, grad_a, grad_bb, None


class LoRALinear(nn.Module):
    """Wrap a frozen `nn.Linear` and add a trainable low-rank path.

    h = base(x) + scaling · B (A · dropout(x)), scaling = alpha / r (or alpha / √r with rslora).
    A starts random ("kaiming": uniform with a=√5, as loralib and PEFT; "gaussian": N(0, 1/r²),
    PEFT's "gaussian"), B starts at zero, so the layer starts equal to its base.
    Shapes: x (..., d_in) -> (..., d_out); lora_A (r, d_in); lora_B (d_out, r).
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
                 init: str = "kaiming", rslora: bool = False):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        if isinstance(base, LoRALinear):
            raise TypeError("base is already a LoRALinear: wrap the plain nn.Linear once")
        self.r = check_rank(r, base.in_features, base.out_features)
        self.alpha = check_positive("alpha", alpha)
        self.init = check_choice("init", init, INITS)
        self.rslora = bool(rslora)
        self.scaling = self.alpha / (math.sqrt(self.r) if self.rslora else self.r)
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(self.r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.r, dtype=w.dtype, device=w.device))
        self.dropout = nn.Dropout(check_probability("dropout", dropout)) if dropout else nn.Identity()
        self.merged = False
        self.reset_lora_parameters()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    def reset_lora_parameters(self) -> None:
        """A random, B = 0: ΔW = 0 at the start, but A's randomness lets B's gradient be non-zero."""
        with torch.no_grad():
            if self.init == "kaiming":
                nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            else:
                nn.init.normal_(self.lora_A, std=1.0 / self.r)
            self.lora_B.zero_()

    def delta_weight(self) -> Tensor:
        """ΔW = scaling · B @ A.  Shape: (d_out, d_in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def forward(self, x: Tensor) -> Tensor:
        if self.merged:
            return self.base(x)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x must have last dimension d_in={self.in_features}, got shape {tuple(x.shape)}")
        if isinstance(self.dropout, nn.Dropout) and self.training:
            # dropout on the LoRA path only; x -> A -> B, never the (d_out, d_in) product B @ A
            lora = (self.dropout(x) @ self.lora_A.t()) @ self.lora_B.t()  # (..., d_out)
            return self.base(x) + lora * self.scaling
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)  # (N, d_in)
        out = _LoRAMatmul.apply(x2, self.base.weight, self.base.bias, self.lora_A, self.lora_B,
                                self.scaling)
        return out.reshape(*lead, self.out_features)  # (..., d_out)

    @torch.no_grad()
    def merge(self) -> None:
        """W0 += ΔW, for inference with no added latency. Merging twice is an error."""
        if self.merged:
            raise RuntimeError("this LoRALinear is already merged; call unmerge() first")
        self.base.weight += self.delta_weight().to(self.base.weight.dtype)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W0 -= ΔW: back to the frozen base plus a separate LoRA path."""
        if not self.merged:
            raise RuntimeError("this LoRALinear is not merged; nothing to unmerge")
        self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
        self.merged = False

    def extra_repr(self) -> str:
        kind = "α/√r" if self.rslora else "α/r"
        return (f"d_in={self.in_features}, d_out={self.out_features}, r={self.r}, "
                f"alpha={self.alpha:g}, scaling={self.scaling:.4g} ({kind}), merged={self.merged}")
