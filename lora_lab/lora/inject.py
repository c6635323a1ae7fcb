"""Put LoRA into any `nn.Module` by name, the way PEFT's `target_modules` does.

A target matches an `nn.Linear` whose qualified name equals it or ends with `.<target>`:
`"q_proj"` matches `"blocks.0.attn.q_proj"` but not `"blocks.0.attn.xq_proj"`. (PEFT reads a
single *string* as a regular expression; here a string is one name, matched the same way.)
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from lora_lab._checks import check_choice, check_positive, check_probability, check_rank
from lora_lab.lora.fused import FusedLoRALinear
from lora_lab.lora.layer import INITS, LoRALinear

_FUSED_HINT = ("nn.MultiheadAttention keeps W_q, W_k, W_v in one fused in_proj_weight (3·d, d) and its "
               "forward reads out_proj.weight directly, so a wrapped layer would never be called; "
               "unfuse it with lora_lab.lora.attention.from_torch_mha, or use loralib's MergedLinear")


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
    if isinstance(targets, nn.Module) or not isinstance(targets, Iterable):
        raise TypeError(f"targets must be a list of module names such as ['q_proj', 'v_proj'], "
                        f"got {type(targets).__name__}")
    targets = list(targets)
    if not targets:
        raise ValueError("targets must name at least one module (e.g. ['q_proj', 'v_proj']), got []")
    bad = [t for t in targets if not isinstance(t, str) or not t]
    if bad:
        raise TypeError(f"targets must be non-empty strings, got {bad!r}")
    return list(dict.fromkeys(targets))  # drop repeats, keep order


def _describe(names: list[str], limit: int = 12) -> str:
    """The names themselves when few; otherwise their distinct last parts and one full example."""
    if len(names) <= limit:
        return f"available nn.Linear names: {names}"
    leaves = sorted({n.rpartition(".")[2] for n in names})
    return (f"available nn.Linear names end in {leaves} ({len(names)} layers, "
            f"e.g. {names[0]!r})")


def _candidates(model: nn.Module) -> dict[str, nn.Module]:
    """Every named submodule except the insides of LoRALinear layers (their base, their dropout)."""
    inside = [n + "." for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    return {n: m for n, m in model.named_modules() if n and not n.startswith(tuple(inside))}


def _not_linear(target: str, name: str, module: nn.Module, available: list[str]) -> ValueError:
    hint = f"; {_FUSED_HINT}" if isinstance(module, nn.MultiheadAttention) else ""
    return ValueError(f"target {target!r} matches {name!r}, a {type(module).__name__}, not an nn.Linear: "
                      f"add_lora adapts nn.Linear layers only{hint}; {_describe(available)}")


def _nothing_found(model: nn.Module, target: str, available: list[str]) -> ValueError:
    inner = [n for n, _ in model.named_modules() if n and _matches(n, target)]
    where = f" ({inner[0]!r} is inside a LoRALinear: target the adapted layer)" if inner else ""
    return ValueError(f"target {target!r} matches no nn.Linear in {type(model).__name__}{where}; "
                      f"{_describe(available)}")


def _resolve(model: nn.Module, targets: list[str]) -> list[str]:
    """Every nn.Linear name the targets select; raise for a double wrap, a target that matches
    nothing, or one that matches something other than an nn.Linear (as PEFT does)."""
    if isinstance(model, nn.Linear):
        raise TypeError("model is itself an nn.Linear: wrap it directly with LoRALinear(model)")
    adapted = list(lora_layers(model))
    for t in targets:
        done = [n for n in adapted if _matches(n, t)]
        if done:
            raise ValueError(f"target {t!r} already has LoRA at {done}; call add_lora once per module")
    candidates, available = _candidates(model), linear_names(model)
    chosen = []
    for t in targets:
        found = {n: m for n, m in candidates.items() if _matches(n, t)}
        if not found:
            raise _nothing_found(model, t, available)
        for n, m in found.items():
            if not isinstance(m, nn.Linear):
                raise _not_linear(t, n, m, available)
        chosen += found
    return sorted(set(chosen))


def _check_not_in_mha(model: nn.Module, names: list[str]) -> None:
    for name in names:
        parent_name = name.rpartition(".")[0]
        if isinstance(model.get_submodule(parent_name), nn.MultiheadAttention):
            raise ValueError(f"cannot adapt {name!r}, the output projection inside an "
                             f"nn.MultiheadAttention: {_FUSED_HINT}")


def _check_ranks(model: nn.Module, names: list[str], r) -> None:
    for name in names:
        layer = model.get_submodule(name)
        try:
            check_rank(r, layer.in_features, layer.out_features)
        except ValueError as err:
            raise ValueError(f"{err} (layer {name!r} maps d_in={layer.in_features} "
                             f"to d_out={layer.out_features})") from None


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Put `module` at the qualified `name` ("blocks.0.attn.q_proj") inside `model`."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def add_lora(model: nn.Module, targets, r: int = 8, alpha: float = 8.0, dropout: float = 0.0,
             init: str = "kaiming", rslora: bool = False, fused: bool = False) -> nn.Module:
    """Replace every targeted `nn.Linear` by a `LoRALinear`, freeze every other non-LoRA parameter,
    and return `model` (changed in place). Every check runs before anything changes.

    Each adapted layer (d_out, d_in) adds r·(d_in + d_out) trainable parameters. Layers that
    already had LoRA stay trainable; an unknown target lists the available names; adapting a
    module twice is an error. `fused=True` builds `FusedLoRALinear` layers (same numbers within
    float rounding, fewer passes over memory; see `lora_lab.lora.fused`).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(fused, bool):
        raise TypeError(f"fused must be True or False, got {fused!r}")
    targets = _check_targets(targets)
    check_positive("alpha", alpha)
    check_probability("dropout", dropout)
    check_choice("init", init, INITS)
    names = _resolve(model, targets)
    _check_not_in_mha(model, names)
    _check_ranks(model, names, r)
    options = dict(r=r, alpha=alpha, dropout=dropout, init=init, rslora=rslora)
    new = _build_layers(model, names, FusedLoRALinear if fused else LoRALinear, options)
    keep = {id(p) for layer in lora_layers(model).values() for p in (layer.lora_A, layer.lora_B)}
    for p in model.parameters():
        if id(p) not in keep:
            p.requires_grad_(False)
    for name, layer in new.items():
        set_submodule(model, name, layer)
    return model


def _build_layers(model: nn.Module, names: list[str], kind: type[LoRALinear],
                  options: dict) -> dict[str, LoRALinear]:
    """Name -> new `kind` layer; if one cannot be built, the bases' requires_grad flags are restored."""
    flags = {p: p.requires_grad for p in model.parameters()}
    try:
        return {name: kind(model.get_submodule(name), **options) for name in names}
    except Exception:
        for p, flag in flags.items():
            p.requires_grad_(flag)
        raise


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    """Name -> LoRALinear for every adapted layer in `model`."""
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def _require_lora(model: nn.Module, merged: bool) -> dict[str, LoRALinear]:
    layers = lora_layers(model)
    if not layers:
        raise ValueError("model has no LoRALinear layers; call add_lora(model, targets) first")
    wrong = [n for n, m in layers.items() if m.merged != merged]
    if wrong:
        state = "not merged" if merged else "already merged"
        raise RuntimeError(f"layers {wrong} are {state}; nothing was changed")
    return layers


def merge_lora(model: nn.Module) -> nn.Module:
    """W0 += ΔW in every LoRA layer, for inference with no added latency. All or nothing."""
    for layer in _require_lora(model, merged=False).values():
        layer.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo `merge_lora`: W0 -= ΔW in every LoRA layer. All or nothing."""
    for layer in _require_lora(model, merged=True).values():
        layer.unmerge()
    return model


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every adapter tensor and nothing of the frozen base: `….lora_A`, `….lora_B`, and what a
    variant adds (DoRA's `….lora_magnitude`). The small file an adapter needs."""
    out = {}
    for name, layer in lora_layers(model).items():
        for key, value in layer.state_dict().items():
            if not key.startswith("base."):
                out[f"{name}.{key}" if name else key] = value.detach().clone()
    return out


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts; a shared parameter counts once."""
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


def format_parameter_table(model: nn.Module) -> str:
    """`parameter_table(model)` as aligned text, with a total line, for printing in a notebook."""
    rows = parameter_table(model)
    trainable, total = count_parameters(model)
    cells = [("module", "kind", "parameters (shape)", "trainable", "total")]
    cells += [(r["module"], r["kind"], r["shapes"], f"{r['trainable']:,}", f"{r['total']:,}") for r in rows]
    cells.append(("all", "", "", f"{trainable:,}", f"{total:,}"))
    widths = [max(len(row[i]) for row in cells) for i in range(5)]
    def line(row):  # names left-aligned, counts right-aligned
        return "  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    lines = [line(row) for row in cells]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
