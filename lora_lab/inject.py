"""Put LoRA into any `nn.Module` by name, the way PEFT's `target_modules` does.

A target matches an `nn.Linear` whose qualified name equals it or ends with `.<target>`.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from lora_lab.layers import LoRALinear


def linear_names(model: nn.Module) -> list[str]:
    """Qualified names of every plain `nn.Linear` (not inside a LoRALinear) in `model`."""
    lora_bases = {id(m.base) for m in model.modules() if isinstance(m, LoRALinear)}
    return [n for n, m in model.named_modules()
            if isinstance(m, nn.Linear) and id(m) not in lora_bases]


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def _check_targets(targets) -> list[str]:
    if isinstance(targets, str):
        targets = [targets]
    if not isinstance(targets, Iterable):
        raise TypeError(f"targets must be a list of module names, got {type(targets).__name__}")
    targets = list(targets)
    if not targets:
        raise ValueError("targets must name at least one module (e.g. ['q_proj', 'v_proj']), got []")
    bad = [t for t in targets if not isinstance(t, str) or not t]
    if bad:
        raise TypeError(f"targets must be non-empty strings, got {bad!r}")
    return targets


def _set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def add_lora(model: nn.Module, targets, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
             init: str = "kaiming", rslora: bool = False) -> nn.Module:
    """Replace every targeted `nn.Linear` by a `LoRALinear`, freeze everything else, return `model`.

    An unknown target lists the available names; adapting a module twice is an error.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    targets = _check_targets(targets)
    adapted = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for t in targets:
        if any(_matches(n, t) for n in adapted):
            raise ValueError(f"target {t!r} already has LoRA; call add_lora once per module")
    available = linear_names(model)
    chosen = {t: [n for n in available if _matches(n, t)] for t in targets}
    missing = [t for t, names in chosen.items() if not names]
    if missing:
        raise ValueError(f"targets {missing} match no nn.Linear; available: {available}")
    for p in model.parameters():
        p.requires_grad_(False)
    for name in sorted({n for names in chosen.values() for n in names}):
        layer = LoRALinear(model.get_submodule(name), r=r, alpha=alpha, dropout=dropout,
                           init=init, rslora=rslora)
        _set_submodule(model, name, layer)
    return model


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Name -> LoRALinear for every adapted layer in `model`."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _require_lora(model: nn.Module) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRALinear layers; call add_lora(model, targets) first")
    return layers


def merge_lora(model: nn.Module) -> nn.Module:
    """Merge every LoRA layer into its base weight (no added latency at inference)."""
    for layer in _require_lora(model).values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo `merge_lora`: subtract every ΔW from its base weight again."""
    for layer in _require_lora(model).values():
        layer.unmerge()
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the LoRA tensors (`….lora_A`, `….lora_B`): the small file an adapter needs."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k.endswith((".lora_A", ".lora_B"))}


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def parameter_table(model: nn.Module) -> list[dict]:
    """One row per module that owns parameters: name, kind, shapes, trainable and total counts."""
    rows = []
    for name, module in model.named_modules():
        own = list(module.named_parameters(recurse=False))
        if not own:
            continue
        rows.append({
            "module": name or "(model)", "kind": type(module).__name__,
            "shapes": ", ".join(f"{n} {tuple(p.shape)}" for n, p in own),
            "trainable": sum(p.numel() for _, p in own if p.requires_grad),
            "total": sum(p.numel() for _, p in own),
        })
    return rows
