"""The reference implementations holding the same weights as a `LoRALinear`, to compare against.

PEFT and loralib are optional (the `test` extra): they are imported only when a twin is built.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lora_lab.lora.layer import LoRALinear

_MISSING = "{name} is not installed: `pip install peft loralib` (the course's `test` extra) to compare"


def _need(name: str):
    try:
        return __import__(name)
    except ImportError as err:
        raise ImportError(_MISSING.format(name=name)) from err


class _Plain(nn.Module):
    """A plain module holding one linear layer, the kind PEFT adapts by name."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.proj = base


def _check_layer(layer) -> LoRALinear:
    if not isinstance(layer, LoRALinear):
        raise TypeError(f"layer must be a LoRALinear, got {type(layer).__name__}")
    if layer.merged:
        raise ValueError("layer is merged; call layer.unmerge() before building a twin")
    return layer


def peft_twin(layer: LoRALinear) -> nn.Module:
    """PEFT's LoRA `Linear` with the same W0, bias, A, B, α and dropout as `layer`."""
    _check_layer(layer)
    peft = _need("peft")
    base = nn.Linear(layer.in_features, layer.out_features, bias=layer.base.bias is not None,
                     device=layer.base.weight.device, dtype=layer.base.weight.dtype)
    base.load_state_dict(layer.base.state_dict())
    p = layer.dropout.p if isinstance(layer.dropout, nn.Dropout) else 0.0
    config = peft.LoraConfig(r=layer.r, lora_alpha=layer.alpha, lora_dropout=p,
                             use_rslora=layer.rslora, target_modules=["proj"])
    twin = peft.inject_adapter_in_model(config, _Plain(base)).proj
    with torch.no_grad():  # PEFT's factors are nn.Linear(d_in, r) and nn.Linear(r, d_out)
        twin.lora_A["default"].weight.copy_(layer.lora_A)  # weight (r, d_in) = A
        twin.lora_B["default"].weight.copy_(layer.lora_B)  # weight (d_out, r) = B
    twin.train(layer.training)  # PEFT's train() returns None, not the module
    return twin


def loralib_twin(layer: LoRALinear) -> nn.Module:
    """loralib's `Linear` with the same weights; merge_weights=False, so `.eval()` never merges."""
    _check_layer(layer)
    if layer.rslora:
        raise ValueError("loralib has no α/√r scaling; build the layer with rslora=False")
    loralib = _need("loralib")
    p = layer.dropout.p if isinstance(layer.dropout, nn.Dropout) else 0.0
    twin = loralib.Linear(layer.in_features, layer.out_features, r=layer.r, lora_alpha=layer.alpha,
                          lora_dropout=p, merge_weights=False, bias=layer.base.bias is not None)
    twin.to(layer.base.weight)
    with torch.no_grad():
        twin.weight.copy_(layer.base.weight)
        if twin.bias is not None:
            twin.bias.copy_(layer.base.bias)
        twin.lora_A.copy_(layer.lora_A)
        twin.lora_B.copy_(layer.lora_B)
    twin.train(layer.training)  # PEFT's train() returns None, not the module
    return twin


def _lora_factors(module: nn.Module) -> tuple[Tensor, Tensor]:
    if isinstance(module, LoRALinear) or not isinstance(module.lora_A, nn.ModuleDict):
        return module.lora_A, module.lora_B
    return module.lora_A["default"].weight, module.lora_B["default"].weight  # PEFT


def outputs_and_grads(module: nn.Module, x: Tensor, seed: int = 0) -> list[Tensor]:
    """Output, grad of x, grad of A, grad of B, for the loss Σ out · c with a fixed c."""
    x = x.detach().clone().requires_grad_(True)
    A, B = _lora_factors(module)
    A.grad = B.grad = None
    torch.manual_seed(seed)  # the same dropout mask in every implementation
    out = module(x)
    c = torch.linspace(-1, 1, out.numel(), dtype=out.dtype, device=out.device).reshape(out.shape)
    (out * c).sum().backward()
    return [out.detach(), x.grad, A.grad.clone(), B.grad.clone()]


def max_difference(a: nn.Module, b: nn.Module, x: Tensor, seed: int = 0) -> float:
    """The largest difference between a's and b's outputs and gradients (x, A, B) on x, each
    divided by max(1, the largest entry of b's): so 1e-6 means "a few float32 rounding steps"."""
    pairs = zip(outputs_and_grads(a, x, seed), outputs_and_grads(b, x, seed), strict=True)
    return max(float((u - v).abs().max()) / max(1.0, float(v.abs().max())) for u, v in pairs)
