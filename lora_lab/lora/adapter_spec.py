"""What an adapter is made of: its layers' kind and shared settings, and its base's fingerprint.

`save_adapter` (lora_lab.lora.adapters) and `export_peft` (lora_lab.lora.peft_export) both describe
a model's LoRA layers with these: one r, alpha, scaling rule and dropout for every layer
(`hyperparameters`), one kind of layer (`variant`: "lora" or "dora"), and, for our own files, a
fingerprint of the frozen base (shape, dtype, a hash, norm and sum per tensor) so that an adapter
is never loaded onto the wrong base.
"""

from __future__ import annotations

import hashlib

import torch
from torch import Tensor, nn

from lora_lab.lora.inject import lora_layers
from lora_lab.lora.layer import LoRALinear

#: Relative tolerance of the fingerprint's norm and sum for float32 and wider. A merge followed by
#: an unmerge leaves W0 + ΔW - ΔW, which differs from W0 in the last bits (about 1e-7 relative).
FINGERPRINT_RTOL = 1e-5
PARTS = {"lora": ("lora_A", "lora_B"), "dora": ("lora_A", "lora_B", "lora_magnitude")}  # per layer


def check_model(model) -> dict[str, LoRALinear]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return lora_layers(model)


def require_unmerged(layers: dict[str, LoRALinear], action: str) -> None:
    merged = [n for n, layer in layers.items() if layer.merged]
    if merged:
        raise ValueError(f"cannot {action} a merged model (layer {merged[0]!r} holds W0 + ΔW, not W0); "
                         "call unmerge_lora(model) first")


def base_state(model: nn.Module) -> dict[str, Tensor]:
    """The frozen base's tensors, named as before LoRA (`x.q_proj.base.weight` -> `x.q_proj.weight`)."""
    layers = check_model(model)
    renames = {f"{n}.base.": f"{n}." for n in layers}
    out = {}
    for key, value in model.state_dict().items():
        if key.endswith((".lora_A", ".lora_B", ".lora_magnitude")):  # trained, not the base
            continue
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def _tensor_print(t: Tensor) -> dict:
    t = t.detach().cpu().contiguous()
    digest = hashlib.sha256(t.reshape(-1).view(torch.uint8).numpy().tobytes()).hexdigest()
    t64 = t.double()
    return {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch."),
            "sha256": digest[:16], "norm": t64.norm().item(), "sum": t64.sum().item()}


def fingerprint(model: nn.Module) -> dict[str, dict]:
    """Name -> {shape, dtype, sha256, norm, sum} for every tensor of the frozen base (unmerged only)."""
    require_unmerged(check_model(model), "fingerprint")
    return {key: _tensor_print(value) for key, value in base_state(model).items()}


def _rtol(dtype_a: str, dtype_b: str) -> float:
    dtypes = [getattr(torch, d) for d in (dtype_a, dtype_b)]
    return max([FINGERPRINT_RTOL] + [4 * torch.finfo(d).eps for d in dtypes if d.is_floating_point])


def _same_tensor(saved: dict, now: dict) -> bool:
    if saved["sha256"] == now["sha256"] and saved["dtype"] == now["dtype"]:
        return True
    tol = _rtol(saved["dtype"], now["dtype"]) * max(saved["norm"], now["norm"], 1e-12)
    return abs(saved["norm"] - now["norm"]) <= tol and abs(saved["sum"] - now["sum"]) <= tol


def compare_fingerprints(saved: dict, now: dict) -> str | None:
    """None when two fingerprints describe the same base; otherwise what differs, naming the first key."""
    for key in list(now) + [k for k in saved if k not in now]:
        if key not in now:
            return f"base tensor {key!r} is in the adapter's base but not in this model"
        if key not in saved:
            return f"base tensor {key!r} is in this model but not in the adapter's base"
        if saved[key]["shape"] != now[key]["shape"]:
            return f"base tensor {key!r} has shape {tuple(now[key]['shape'])}, the adapter's base had " \
                   f"{tuple(saved[key]['shape'])}"
        if not _same_tensor(saved[key], now[key]):
            return f"base tensor {key!r} differs: norm {now[key]['norm']:.6g} here, " \
                   f"{saved[key]['norm']:.6g} in the adapter's base"
    return None


def _dropout_p(layer: LoRALinear) -> float:
    return layer.dropout.p if isinstance(layer.dropout, nn.Dropout) else 0.0


def adapter_variant(layers: dict[str, LoRALinear]) -> str:
    """"dora" when every adapted layer is a DoRALinear, "lora" when none is; a mix is an error."""
    from lora_lab.lora.variants import DoRALinear

    dora = sorted(n for n, layer in layers.items() if isinstance(layer, DoRALinear))
    if dora and len(dora) != len(layers):
        plain = sorted(set(layers) - set(dora))[0]
        raise ValueError(f"an adapter holds one kind of layer: {dora[0]!r} is DoRA, {plain!r} is plain LoRA")
    return "dora" if dora else "lora"


def hyperparameters(layers: dict[str, LoRALinear]) -> dict:
    """The one r, alpha, scaling rule and dropout every adapted layer shares (an error names the odd one)."""
    if not layers:
        raise ValueError("model has no LoRALinear layers; call add_lora(model, targets) first")
    settings = {n: (m.r, m.alpha, m.rslora, _dropout_p(m)) for n, m in layers.items()}
    first_name, first = next(iter(settings.items()))
    for name, value in settings.items():
        if value != first:
            raise ValueError(f"every LoRA layer must share r, alpha, rslora and dropout; {name!r} has "
                             f"{value}, {first_name!r} has {first}")
    r, alpha, rslora, dropout = first
    return {"r": r, "alpha": alpha, "scaling": "alpha/sqrt(r)" if rslora else "alpha/r", "dropout": dropout}
