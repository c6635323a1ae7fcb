"""Adapter files: save only A and B, load them back onto the right base, export to PEFT.

`save_adapter` writes two files and nothing else: `NAME.safetensors` (the LoRA tensors, raw bytes
behind a JSON header, so loading can never run code the way a pickle can) and `NAME.json` (r,
alpha, the scaling rule, the targets and a fingerprint of the frozen base). `load_adapter` checks
targets, shapes and the fingerprint before it touches the model. `export_peft` writes the same
tensors in the layout `peft.PeftModel.from_pretrained` reads (it lives in
`lora_lab.lora.peft_export`; the fingerprint and the shared settings in `lora_lab.lora.adapter_spec`;
both are importable from here too).

A DoRA model (`lora_lab.lora.variants.DoRALinear` layers) saves its trained magnitude too
(`NAME.lora_magnitude`, shape (d_out,); config `"variant": "dora"`; PEFT: `use_dora` and
`….lora_magnitude_vector`): without it the adapter would not reproduce the model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lora_lab.lora.adapter_spec import (
    FINGERPRINT_RTOL,
    PARTS,
    adapter_variant,
    base_state,
    check_model,
    compare_fingerprints,
    fingerprint,
    hyperparameters,
    require_unmerged,
)
from lora_lab.lora.inject import add_lora, linear_names, lora_layers, set_submodule
from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.peft_export import PEFT_PREFIX, export_peft, peft_targets

__all__ = ["FINGERPRINT_RTOL", "FORMAT", "PARTS", "PEFT_PREFIX", "VERSION", "base_state",
           "compare_fingerprints", "export_peft", "file_kib", "fingerprint", "load_adapter",
           "peft_targets", "read_adapter", "save_adapter"]

FORMAT, VERSION = "lora_lab.adapter", 1


def _adapter_paths(path) -> tuple[Path, Path]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end with '.safetensors' (the JSON config goes beside it), "
                         f"got {str(path)!r}")
    return path, path.with_suffix(".json")


def _config_text(config: dict) -> str:
    """Indented JSON, with one line per base tensor so that the fingerprint reads as a table."""
    head = json.dumps({k: v for k, v in config.items() if k != "base"}, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in config["base"].items())
    return head[:-2] + ',\n "base": {\n' + rows + "\n }\n}\n"  # head[:-2] drops its closing "\n}"


def save_adapter(model: nn.Module, path) -> tuple[Path, Path]:
    """Write the LoRA tensors to `path` (.safetensors) and the config to the same name with .json.

    Returns (tensors path, config path). Refuses a merged model: its fingerprint would be of W0 + ΔW.
    """
    layers = check_model(model)
    config = {"format": FORMAT, "version": VERSION, **hyperparameters(layers), "targets": sorted(layers)}
    variant = adapter_variant(layers)
    if variant != "lora":  # a plain LoRA config stays as it always was
        config["variant"] = variant
    require_unmerged(layers, "save an adapter from")
    config["base"] = fingerprint(model)
    tensors_path, config_path = _adapter_paths(path)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for name, layer in layers.items():  # lora_A (r, d_in), lora_B (d_out, r), lora_magnitude (d_out,)
        for part in PARTS[variant]:
            tensors[f"{name}.{part}"] = getattr(layer, part).detach().cpu().contiguous()
    save_file(tensors, str(tensors_path), metadata={"format": "pt"})
    config_path.write_text(_config_text(config), encoding="utf-8")
    return tensors_path, config_path


def read_adapter(path) -> tuple[dict[str, Tensor], dict]:
    """(tensors, config) of an adapter saved by `save_adapter`, with no model involved."""
    tensors_path, config_path = _adapter_paths(path)
    for p in (tensors_path, config_path):
        if not p.is_file():
            raise FileNotFoundError(f"adapter file {str(p)!r} does not exist")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    if config.get("format") != FORMAT or config.get("version") != VERSION:
        raise ValueError(f"{str(config_path)!r} is not a {FORMAT} v{VERSION} config, got "
                         f"format={config.get('format')!r}, version={config.get('version')!r}")
    config.setdefault("variant", "lora")
    if config["variant"] not in PARTS:
        raise ValueError(f"{str(config_path)!r} names variant {config['variant']!r}; "
                         f"this version reads {sorted(PARTS)}")
    return load_file(str(tensors_path)), config


def _check_targets(model: nn.Module, layers: dict, tensors: dict, config: dict) -> None:
    targets, variant = config["targets"], config["variant"]
    if layers and sorted(layers) != targets:
        extra = sorted(set(layers) ^ set(targets))[0]
        where = "the model has LoRA on" if extra in layers else "the adapter has"
        raise ValueError(f"targets differ: {where} {extra!r}; model: {sorted(layers)}, adapter: {targets}")
    if layers and adapter_variant(layers) != variant:
        raise ValueError(f"the adapter is {variant!r}, the model's layers are {adapter_variant(layers)!r}; "
                         "load it into the base alone, or into a model with the same kind of layers")
    expected = {f"{n}.{part}" for n in targets for part in PARTS[variant]}
    if set(tensors) != expected:
        odd = sorted(set(tensors) ^ expected)[0]
        raise ValueError(f"the adapter's tensors do not match its targets: {odd!r} is missing or extra")
    available = set(linear_names(model)) | set(layers)
    for name in targets:
        if name not in available:
            raise ValueError(f"target {name!r} of the adapter is not an nn.Linear of this model")
        if name in layers:
            r, d_in, d_out = layers[name].r, layers[name].in_features, layers[name].out_features
        else:
            linear = model.get_submodule(name)
            r, d_in, d_out = config["r"], linear.in_features, linear.out_features
        need = {"lora_A": (r, d_in), "lora_B": (d_out, r), "lora_magnitude": (d_out,)}
        need = {part: need[part] for part in PARTS[variant]}
        for part, shape in need.items():
            got = tuple(tensors[f"{name}.{part}"].shape)
            if got != shape:
                raise ValueError(f"{name}.{part} has shape {got} in the adapter, this model needs {shape}")


def _check_scaling(layers: dict[str, LoRALinear], config: dict) -> None:
    """A model that already has LoRA must use the adapter's alpha and scaling rule, or ΔW changes."""
    for name, layer in layers.items():
        kind = "alpha/sqrt(r)" if layer.rslora else "alpha/r"
        if (layer.alpha, kind) != (config["alpha"], config["scaling"]):
            raise ValueError(f"{name!r} has alpha={layer.alpha:g} ({kind}), the adapter was trained with "
                             f"alpha={config['alpha']:g} ({config['scaling']})")


def load_adapter(model: nn.Module, path) -> nn.Module:
    """Check targets, shapes and the base's fingerprint, then put the adapter's A and B into `model`.

    A model without LoRA gets it first (`add_lora` with the adapter's r, alpha and targets). A
    mismatch raises ValueError naming the first bad key, before the model is changed.
    """
    layers = check_model(model)
    tensors, config = read_adapter(path)
    require_unmerged(layers, "load an adapter into")
    _check_targets(model, layers, tensors, config)
    _check_scaling(layers, config)
    problem = compare_fingerprints(config["base"], fingerprint(model))
    if problem:
        raise ValueError(f"this is not the base the adapter was trained on: {problem}")
    if not layers:
        add_lora(model, config["targets"], r=config["r"], alpha=config["alpha"],
                 dropout=config["dropout"], rslora=config["scaling"] == "alpha/sqrt(r)")
        if config["variant"] == "dora":
            from lora_lab.lora.variants import DoRALinear

            for name, layer in lora_layers(model).items():
                set_submodule(model, name, DoRALinear.from_lora(layer))
    with torch.no_grad():
        for name, layer in lora_layers(model).items():
            for part in PARTS[config["variant"]]:
                getattr(layer, part).copy_(tensors[f"{name}.{part}"])
    return model


def file_kib(path) -> float:
    """Size of a file in KiB (1024 bytes)."""
    return Path(path).stat().st_size / 1024

