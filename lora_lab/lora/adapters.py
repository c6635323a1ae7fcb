"""Adapter files: save only A and B, load them back onto the right base, export to PEFT.

`save_adapter` writes two files and nothing else: `NAME.safetensors` (the LoRA tensors, raw bytes
behind a JSON header, so loading can never run code the way a pickle can) and `NAME.json` (r,
alpha, the scaling rule, the targets and a fingerprint of the frozen base). `load_adapter` checks
targets, shapes and the fingerprint before it touches the model. `export_peft` writes the same
tensors in the layout `peft.PeftModel.from_pretrained` reads.

A DoRA model (`lora_lab.lora.variants.DoRALinear` layers) saves its trained magnitude too
(`NAME.lora_magnitude`, shape (d_out,); config `"variant": "dora"`; PEFT: `use_dora` and
`….lora_magnitude_vector`): without it the adapter would not reproduce the model.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lora_lab.lora.inject import add_lora, linear_names, lora_layers, set_submodule
from lora_lab.lora.layer import LoRALinear

FORMAT, VERSION = "lora_lab.adapter", 1
#: Relative tolerance of the fingerprint's norm and sum for float32 and wider. A merge followed by
#: an unmerge leaves W0 + ΔW - ΔW, which differs from W0 in the last bits (about 1e-7 relative).
FINGERPRINT_RTOL = 1e-5
PEFT_PREFIX = "base_model.model."
PARTS = {"lora": ("lora_A", "lora_B"), "dora": ("lora_A", "lora_B", "lora_magnitude")}  # per layer


def _check_model(model) -> dict[str, LoRALinear]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    return lora_layers(model)


def _require_unmerged(layers: dict[str, LoRALinear], action: str) -> None:
    merged = [n for n, layer in layers.items() if layer.merged]
    if merged:
        raise ValueError(f"cannot {action} a merged model (layer {merged[0]!r} holds W0 + ΔW, not W0); "
                         "call unmerge_lora(model) first")


def _adapter_paths(path) -> tuple[Path, Path]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"path must end with '.safetensors' (the JSON config goes beside it), "
                         f"got {str(path)!r}")
    return path, path.with_suffix(".json")


def base_state(model: nn.Module) -> dict[str, Tensor]:
    """The frozen base's tensors, named as before LoRA (`x.q_proj.base.weight` -> `x.q_proj.weight`)."""
    layers = _check_model(model)
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
    _require_unmerged(_check_model(model), "fingerprint")
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


def _variant(layers: dict[str, LoRALinear]) -> str:
    """"dora" when every adapted layer is a DoRALinear, "lora" when none is; a mix is an error."""
    from lora_lab.lora.variants import DoRALinear

    dora = sorted(n for n, layer in layers.items() if isinstance(layer, DoRALinear))
    if dora and len(dora) != len(layers):
        plain = sorted(set(layers) - set(dora))[0]
        raise ValueError(f"an adapter holds one kind of layer: {dora[0]!r} is DoRA, {plain!r} is plain LoRA")
    return "dora" if dora else "lora"


def _hyperparameters(layers: dict[str, LoRALinear]) -> dict:
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


def _config_text(config: dict) -> str:
    """Indented JSON, with one line per base tensor so that the fingerprint reads as a table."""
    head = json.dumps({k: v for k, v in config.items() if k != "base"}, indent=1)
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in config["base"].items())
    return head[:-2] + ',\n "base": {\n' + rows + "\n }\n}\n"  # head[:-2] drops its closing "\n}"


def save_adapter(model: nn.Module, path) -> tuple[Path, Path]:
    """Write the LoRA tensors to `path` (.safetensors) and the config to the same name with .json.

    Returns (tensors path, config path). Refuses a merged model: its fingerprint would be of W0 + ΔW.
    """
    layers = _check_model(model)
    config = {"format": FORMAT, "version": VERSION, **_hyperparameters(layers), "targets": sorted(layers)}
    variant = _variant(layers)
    if variant != "lora":  # a plain LoRA config stays as it always was
        config["variant"] = variant
    _require_unmerged(layers, "save an adapter from")
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
    if layers and _variant(layers) != variant:
        raise ValueError(f"the adapter is {variant!r}, the model's layers are {_variant(layers)!r}; "
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
    layers = _check_model(model)
    tensors, config = read_adapter(path)
    _require_unmerged(layers, "load an adapter into")
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


def _module_names(model: nn.Module, layers: dict) -> list[str]:
    """Module names as PEFT sees the base: without the insides of our LoRALinear wrappers."""
    return [n for n, _ in model.named_modules() if n and not any(n.startswith(f"{m}.") for m in layers)]


def peft_targets(model: nn.Module) -> list[str] | str:
    """PEFT `target_modules` selecting exactly the adapted layers: leaf names when they suffice
    (["q_proj", "v_proj"]), else a regex of the full names (PEFT full-matches a string)."""
    layers = _check_model(model)
    leaves = sorted({n.rpartition(".")[2] for n in layers})
    chosen = {n for n in _module_names(model, layers) if n.rpartition(".")[2] in leaves}
    if chosen == set(layers):
        return leaves
    return "|".join(n.replace(".", r"\.") for n in sorted(layers))


def export_peft(model: nn.Module, directory) -> Path:
    """Write `adapter_config.json` and `adapter_model.safetensors` as PEFT 0.21 saves them.

    `peft.PeftModel.from_pretrained(<the same base>, directory)` then computes what `model` does.
    Keys: `base_model.model.<name>.lora_A.weight` (r, d_in) and `….lora_B.weight` (d_out, r); for DoRA
    also `….lora_magnitude_vector` (d_out,) and `"use_dora": true`.
    """
    layers = _check_model(model)
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a str or a path, got {type(directory).__name__}")
    hp, variant = _hyperparameters(layers), _variant(layers)
    config = {"peft_type": "LORA", "task_type": None, "base_model_name_or_path": None,
              "r": hp["r"], "lora_alpha": hp["alpha"], "use_rslora": hp["scaling"] != "alpha/r",
              "lora_dropout": hp["dropout"], "target_modules": peft_targets(model), "bias": "none",
              "fan_in_fan_out": False, "init_lora_weights": True, "inference_mode": True,
              "modules_to_save": None}
    if variant == "dora":
        config["use_dora"] = True
    peft_keys = {"lora_A": "lora_A.weight", "lora_B": "lora_B.weight",
                 "lora_magnitude": "lora_magnitude_vector"}
    tensors = {}
    for name, layer in layers.items():
        for part in PARTS[variant]:
            tensor = getattr(layer, part).detach().cpu().contiguous()
            tensors[f"{PEFT_PREFIX}{name}.{peft_keys[part]}"] = tensor
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


def file_kib(path) -> float:
    """Size of a file in KiB (1024 bytes)."""
    return Path(path).stat().st_size / 1024

