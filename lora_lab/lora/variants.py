"""LoRA's descendants built on `LoRALinear`: rsLoRA (a scaling), DoRA (a layer), PiSSA (an init).

- rsLoRA (Kalajdzievski 2023, arXiv 2312.03732): scaling α/√r instead of α/r. It is the
  `rslora=True` option of `LoRALinear`; nothing else changes.
- DoRA (Liu et al. 2024, arXiv 2402.09353): W' = m ⊙ (W0 + s·BA) / ‖W0 + s·BA‖, the norm taken per
  output row of the (d_out, d_in) weight; m (d_out,) trains, starting at ‖W0‖ per row.
- PiSSA (Meng et al. 2024, arXiv 2404.02948): B, A from the top-r SVD of W0, so s·BA is W0's best
  rank-r approximation; the frozen base becomes the residual W0 − s·BA, so the output is unchanged.

Orientation as everywhere: W0 (d_out, d_in), A (r, d_in), B (d_out, r). Each variant is checked
against PEFT 0.21 (`use_rslora`, `use_dora`, `init_lora_weights="pissa"`) in tests/test_variants.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lora_lab._checks import check_choice
from lora_lab.lora.inject import add_lora, lora_layers, set_submodule
from lora_lab.lora.layer import LoRALinear

VARIANTS = ("lora", "rslora", "dora", "pissa")


class DoRALinear(LoRALinear):
    """A LoRALinear whose weight is split into a trained magnitude and a direction (DoRA).

    y = (m / ‖W0 + s·BA‖) ⊙ (W0 x + s·B A x) + bias, the norm per output row, shape (d_out,).
    As in the DoRA paper (§4.3) and PEFT, the norm is treated as a constant in the backward pass
    (detached): it follows BA's current value but passes no gradient, which saves memory.
    m starts at ‖W0 + s·BA‖ = ‖W0‖ (B = 0), so the layer starts equal to its base.
    Shapes: x (..., d_in) -> (..., d_out); lora_magnitude (d_out,).
    """

    def __init__(self, base: nn.Linear, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
                 init: str = "kaiming", rslora: bool = False):
        super().__init__(base, r=r, alpha=alpha, dropout=dropout, init=init, rslora=rslora)
        self.lora_magnitude = nn.Parameter(self.weight_norm())
        self._merged_norm: Tensor | None = None

    @classmethod
    def from_lora(cls, layer: LoRALinear) -> DoRALinear:
        """A DoRA layer over `layer`'s base, keeping its A, B and options (the RNG is left as it was)."""
        if type(layer) is not LoRALinear:
            raise TypeError(f"layer must be a plain LoRALinear, got {type(layer).__name__}")
        if layer.merged:
            raise RuntimeError("layer is merged; unmerge() it before turning it into DoRA")
        p = layer.dropout.p if isinstance(layer.dropout, nn.Dropout) else 0.0
        with torch.random.fork_rng(devices=[]):  # the throw-away A must not shift later draws
            dora = cls(layer.base, layer.r, layer.alpha, p, layer.init, layer.rslora)
        with torch.no_grad():
            dora.lora_A.copy_(layer.lora_A)
            dora.lora_B.copy_(layer.lora_B)
            dora.lora_magnitude.copy_(dora.weight_norm())
        return dora

    def weight_norm(self) -> Tensor:
        """‖W0 + s·BA‖ per output row, detached (a constant for autograd).  Shape: (d_out,)."""
        with torch.no_grad():
            w = self.base.weight + self.delta_weight()  # (d_out, d_in)
            return torch.linalg.norm(w, dim=1)  # (d_out,)

    def weight(self) -> Tensor:
        """The effective weight m ⊙ (W0 + s·BA) / ‖W0 + s·BA‖ (what `merge` writes).  Shape: (d_out, d_in)."""
        if self.merged:
            return self.base.weight
        scale = self.lora_magnitude / self.weight_norm()  # (d_out,)
        return scale[:, None] * (self.base.weight + self.delta_weight())  # (d_out, d_in)

    def _check_x(self, x) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"x must have shape (..., d_in={self.in_features}), got {tuple(x.shape)}")
        if x.dtype != self.base.weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f"x must have the layer's dtype {self.base.weight.dtype}, got {x.dtype}")

    def forward(self, x: Tensor) -> Tensor:
        """y = base(x) + (g − 1)·W0 x' + g·s·B A x', g = m / ‖W0 + s·BA‖, x' = dropout(x).

        Without dropout (x' = x) this is g ⊙ (W0 + s·BA) x + bias. With dropout the frozen path
        still sees x, as in PEFT.  Shapes: x (..., d_in) -> (..., d_out).
        """
        self._check_x(x)
        if self.merged:
            return self.base(x)
        xd = self.dropout(x) if self.training else x
        g = self.lora_magnitude / self.weight_norm()  # (d_out,): broadcasts over the last axis
        lora = (xd @ self.lora_A.t()) @ self.lora_B.t()  # (..., d_out)
        return self.base(x) + (g - 1) * F.linear(xd, self.base.weight) + g * lora * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        """W0 <- m ⊙ (W0 + s·BA) / ‖W0 + s·BA‖ (the norm is kept for `unmerge`). Twice is an error."""
        if self.merged:
            raise RuntimeError("this DoRALinear is already merged; call unmerge() first")
        self._merged_norm = self.weight_norm()
        self.base.weight.copy_(self.weight())
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """W0 <- W / g − s·BA, with the norm saved at merge time."""
        if not self.merged:
            raise RuntimeError("this DoRALinear is not merged; nothing to unmerge")
        g = self.lora_magnitude / self._merged_norm  # (d_out,)
        self.base.weight.copy_(self.base.weight / g[:, None] - self.delta_weight())
        self.merged, self._merged_norm = False, None

    def extra_repr(self) -> str:
        return super().extra_repr() + ", magnitude=(d_out,)"


@torch.no_grad()
def pissa_init_(layer: LoRALinear) -> LoRALinear:
    """PiSSA in place: A = √Σr Vrᵀ / √s, B = Ur √Σr / √s, base W0 <- W0 − s·BA (the residual).

    s·BA = Ur Σr Vrᵀ is W0's best rank-r approximation, so base + s·BA = W0 and the layer's output
    is unchanged. The SVD runs in float32 (float64 for a float64 W0); PEFT's in float32. Returns `layer`.
    Shapes: W0 (d_out, d_in) = U (d_out, k) Σ (k,) Vᵀ (k, d_in); A (r, d_in); B (d_out, r).
    """
    if not isinstance(layer, LoRALinear):
        raise TypeError(f"layer must be a LoRALinear, got {type(layer).__name__}")
    if layer.merged:
        raise RuntimeError("layer is merged: PiSSA splits the frozen W0, so unmerge() first")
    w = layer.base.weight
    acc = torch.promote_types(w.dtype, torch.float32)  # fp16/bf16 weights: the SVD in float32
    U, S, Vh = torch.linalg.svd(w.to(acc), full_matrices=False)  # (d_out, k), (k,), (k, d_in)
    root = torch.sqrt(S[:layer.r] / layer.scaling)  # (r,): s·B A then carries Σr exactly once
    layer.lora_A.copy_(root[:, None] * Vh[:layer.r])  # (r, d_in)
    layer.lora_B.copy_(U[:, :layer.r] * root)  # (d_out, r)
    residual = w.to(acc) - layer.scaling * (layer.lora_B.to(acc) @ layer.lora_A.to(acc))  # (d_out, d_in)
    w.copy_(residual.to(w.dtype))
    if isinstance(layer, DoRALinear):  # ‖residual + s·BA‖ = ‖W0‖: the magnitude stays valid
        layer.lora_magnitude.copy_(layer.weight_norm())
    return layer


def add_variant(model: nn.Module, targets, variant: str = "lora", r: int = 8, alpha: float = 8.0,
                dropout: float = 0.0, init: str = "kaiming", fused: bool = False) -> nn.Module:
    """`add_lora` with one of VARIANTS ("lora", "rslora", "dora", "pissa"); returns `model`.

    The targets are matched, checked and wrapped by `lora_lab.lora.inject.add_lora` (same rules, same
    errors); then each new layer becomes DoRA, or gets PiSSA's init. Changes `model` in place.
    `fused=True` gives "lora", "rslora" and "pissa" the `FusedLoRALinear` layer; DoRA keeps its own
    forward either way.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    check_choice("variant", variant, VARIANTS)
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be True or False, got {fused!r}")
    before = set(lora_layers(model))
    magnitudes = [m.lora_magnitude for m in model.modules() if isinstance(m, DoRALinear)]
    trainable = [p.requires_grad for p in magnitudes]
    add_lora(model, targets, r=r, alpha=alpha, dropout=dropout, init=init, rslora=variant == "rslora",
             fused=fused and variant != "dora")
    for p, flag in zip(magnitudes, trainable, strict=True):  # add_lora froze every non-A/B parameter
        p.requires_grad_(flag)
    for name, layer in lora_layers(model).items():
        if name in before:
            continue
        if variant == "dora":
            set_submodule(model, name, DoRALinear.from_lora(layer))
        elif variant == "pissa":
            pissa_init_(layer)
    return model


def magnitude_direction_change(W0: Tensor, W: Tensor) -> tuple[Tensor, Tensor]:
    """Per output row: ΔM = |‖W‖ − ‖W0‖| and ΔD = 1 − cos(W, W0) (DoRA paper, Figure 2).

    Shapes: W0, W (d_out, d_in) -> two (d_out,) tensors.
    """
    if W0.shape != W.shape or W0.dim() != 2:
        raise ValueError(f"W0 and W must be 2-D with one shape, got {tuple(W0.shape)} and {tuple(W.shape)}")
    n0, n = torch.linalg.norm(W0, dim=1), torch.linalg.norm(W, dim=1)  # (d_out,)
    return (n - n0).abs(), 1 - F.cosine_similarity(W, W0, dim=1)
