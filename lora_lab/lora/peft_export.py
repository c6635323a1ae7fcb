"""The bridge to PEFT: write a LoRA (or DoRA) model as `peft.PeftModel.from_pretrained` reads it.

Our layers already use PEFT's names and orientation (`lora_A` (r, d_in), `lora_B` (d_out, r)), so
export is a rename: `<name>.lora_A` -> `base_model.model.<name>.lora_A.weight`, and for DoRA
`<name>.lora_magnitude` -> `….lora_magnitude_vector` with `"use_dora": true`. PEFT is not
imported here: the files are written with safetensors and JSON alone.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import save_file
from torch import nn

from lora_lab.lora.adapter_spec import PARTS, adapter_variant, check_model, hyperparameters

PEFT_PREFIX = "base_model.model."


def _module_names(model: nn.Module, layers: dict) -> list[str]:
    """Module names as PEFT sees the base: without the insides of our LoRALinear wrappers."""
    return [n for n, _ in model.named_modules() if n and not any(n.startswith(f"{m}.") for m in layers)]


def peft_targets(model: nn.Module) -> list[str] | str:
    """PEFT `target_modules` selecting exactly the adapted layers: leaf names when they suffice
    (["q_proj", "v_proj"]), else a regex of the full names (PEFT full-matches a string)."""
    layers = check_model(model)
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
    layers = check_model(model)
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a str or a path, got {type(directory).__name__}")
    hp, kind = hyperparameters(layers), adapter_variant(layers)
    config = {"peft_type": "LORA", "task_type": None, "base_model_name_or_path": None,
              "r": hp["r"], "lora_alpha": hp["alpha"], "use_rslora": hp["scaling"] != "alpha/r",
              "lora_dropout": hp["dropout"], "target_modules": peft_targets(model), "bias": "none",
              "fan_in_fan_out": False, "init_lora_weights": True, "inference_mode": True,
              "modules_to_save": None}
    if kind == "dora":
        config["use_dora"] = True
    peft_keys = {"lora_A": "lora_A.weight", "lora_B": "lora_B.weight",
                 "lora_magnitude": "lora_magnitude_vector"}
    tensors = {}
    for name, layer in layers.items():
        for part in PARTS[kind]:
            tensor = getattr(layer, part).detach().cpu().contiguous()
            tensors[f"{PEFT_PREFIX}{name}.{peft_keys[part]}"] = tensor
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory
