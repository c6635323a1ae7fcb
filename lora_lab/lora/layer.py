"""The LoRA linear layer: h = W0 x + (alpha / r) · B A x, with W0 frozen (Hu et al. 2021, §4.1).

Orientation follows `nn.Linear`: W0 is (d_out, d_in), A is (r, d_in), B is (d_out, r).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from lora_lab._checks import check_choice, check_positive, check_probability, check_rank

INITS = ("kaiming", "gaussian")


def autocast_on(device_type: str) -> bool:
    """Whether autocast is active for this device type; devices without autocast (meta) say no."""
    try:
        return torch.is_autocast_enabled(device_type)
    except RuntimeError:
        return False


class LoRALinear(nn.Module):
    """Wrap a frozen `nn.Linear` and add a trainable low-rank path.

    h = base(x) + scaling · B (A · dropout(x)), scaling = alpha / r (or alpha / √r with rslora).
    A starts random ("kaiming": uniform with a=√5, as loralib and PEFT; "gaussian": N(0, 1/r²),
    PEFT's "gaussian"), B starts at zero, so the layer starts equal to its base.
    Dropout acts on the LoRA path only. The product B @ A is never formed in `forward`.
    `lora_lab.lora.fused.FusedLoRALinear` computes the same in fewer passes over memory.
    Shapes: x (..., d_in) -> (..., d_out); lora_A (r, d_in); lora_B (d_out, r).
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
                 init: str = "kaiming", rslora: bool = False):
        super().__init__()
        if isinstance(base, LoRALinear):
            raise TypeError("base is already a LoRALinear: wrap the plain nn.Linear once")
        if not isinstance(base, nn.Linear):
            raise TypeError(f"base must be an nn.Linear, got {type(base).__name__}")
        if not base.weight.is_floating_point():
            raise TypeError(f"base.weight must be a floating-point tensor, got {base.weight.dtype}")
        self.r = check_rank(r, base.in_features, base.out_features)
        self.alpha = check_positive("alpha", alpha)
        p = check_probability("dropout", dropout)
        self.init = check_choice("init", init, INITS)
        self.rslora = bool(rslora)
        self.scaling = self.alpha / (math.sqrt(self.r) if self.rslora else self.r)
        self.base = base
        for param in base.parameters():
            param.requires_grad_(False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(self.r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, self.r, dtype=w.dtype, device=w.device))
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()
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
        """ΔW = scaling · B @ A, in the parameters' dtype.  Shape: (d_out, d_in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def _check_input(self, x) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., d_in={self.in_features}), got {tuple(x.shape)}")
        dtype = self.base.weight.dtype
        if x.dtype != dtype and not autocast_on(x.device.type):
            raise TypeError(f"x must have the layer's dtype {dtype}, got {x.dtype} "
                            f"(convert one of them with .to(...))")

    def forward(self, x: Tensor) -> Tensor:
        """h = base(x) + scaling · B A dropout(x) (§4.1).  Shapes: x (..., d_in) -> (..., d_out)."""
        self._check_input(x)
        if self.merged:  # W0 already holds ΔW: the plain base layer, no gradient reaches A and B
            return self.base(x)
        xa = self.dropout(x) @ self.lora_A.t()  # (..., r): A x, never B @ A
        return self.base(x) + self.scaling * (xa @ self.lora_B.t())  # (..., d_out)

    def _shifted_weight(self, sign: float) -> Tensor:
        """W0 ± ΔW, summed in float32 (at least) and rounded once to W0's dtype."""
        w = self.base.weight
        acc = torch.promote_types(w.dtype, torch.float32)
        delta = (self.lora_B.to(acc) @ self.lora_A.to(acc)) * self.scaling  # (d_out, d_in)
        return (w.to(acc) + sign * delta).to(w.dtype)

    @torch.no_grad()
    def merge(self) -> None:
        """W0 += ΔW, for inference with no added latency. Merging twice is an error."""
        if self.merged:
            raise RuntimeError("this LoRALinear is already merged; call unmerge() first")
        self.base.weight.copy_(self._shifted_weight(+1.0))
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W0 -= ΔW: back to the frozen base plus a separate LoRA path."""
        if not self.merged:
            raise RuntimeError("this LoRALinear is not merged; nothing to unmerge")
        self.base.weight.copy_(self._shifted_weight(-1.0))
        self.merged = False

    def extra_repr(self) -> str:
        kind = "α/√r" if self.rslora else "α/r"
        return (f"d_in={self.in_features}, d_out={self.out_features}, r={self.r}, "
                f"alpha={self.alpha:g}, scaling={self.scaling:.4g} ({kind}), merged={self.merged}")
