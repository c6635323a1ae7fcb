"""The bridge to PEFT for the variants: build PEFT's version of a model adapted by `add_variant`.

`peft_twin(original, adapted, targets, variant)` asks PEFT for the same variant on a copy of
`original` (PEFT runs its own init: its own SVD for PiSSA, its own norms for DoRA) and then copies
our A, B (and DoRA's magnitude) into it, so both models hold the same trained tensors.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lora_lab._checks import check_choice, check_positive
from lora_lab.lora.inject import lora_layers
from lora_lab.lora.variants import VARIANTS, DoRALinear

#: LoraConfig options that select each variant in PEFT 0.21.
PEFT_OPTIONS = {"lora": {}, "rslora": {"use_rslora": True}, "dora": {"use_dora": True},
                "pissa": {"init_lora_weights": "pissa"}}


def peft_twin(original: nn.Module, adapted: nn.Module, targets, variant: str):
    """PEFT's `variant` on a copy of `original`, holding `adapted`'s A, B (and magnitudes)."""
    from peft import LoraConfig, get_peft_model

    check_choice("variant", variant, VARIANTS)
    layers = lora_layers(adapted)
    if not layers:
        raise ValueError("adapted has no LoRA layers; call add_variant(model, targets, variant) first")
    first = next(iter(layers.values()))
    config = LoraConfig(r=first.r, lora_alpha=first.alpha, target_modules=list(targets),
                        **PEFT_OPTIONS[variant])
    twin = get_peft_model(copy.deepcopy(original), config)
    with torch.no_grad():
        for name, layer in layers.items():
            theirs = twin.base_model.model.get_submodule(name)
            theirs.lora_A["default"].weight.copy_(layer.lora_A)
            theirs.lora_B["default"].weight.copy_(layer.lora_B)
            if isinstance(layer, DoRALinear):
                theirs.lora_magnitude_vector["default"].weight.copy_(layer.lora_magnitude)
    return twin.eval()


@torch.no_grad()
def randomize_adapters_(model: nn.Module, scale: float = 0.1, seed: int = 0) -> nn.Module:
    """Stand-in for training: add seeded noise of size `scale` to every A, B (and DoRA magnitude)."""
    gen = torch.Generator().manual_seed(seed)
    scale = check_positive("scale", scale)
    for layer in lora_layers(model).values():
        params = [layer.lora_A, layer.lora_B]
        params += [layer.lora_magnitude] if isinstance(layer, DoRALinear) else []
        for p in params:
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return model
