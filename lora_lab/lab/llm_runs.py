"""The capstone's fine-tunes, trained once and then read back from the runs cache.

`cached_train_lm(model, blocks, …)` is `llm.train_lm` with a memory: its key is a digest of
everything the result depends on — every parameter of the model as it is before training (names,
shapes, dtypes and bytes: the frozen base, LoRA's random start, PEFT's or ours), the token blocks
and the training settings. A hit loads the trained values of the trainable parameters into the
model and returns the step losses and the training time of the run that made the entry; a miss
trains, then writes `<cache>/runs/lm-v<LM_RUNS_VERSION>-<digest>.safetensors` atomically. A file
that cannot be read is a miss (with a warning), never a crash.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings

import torch
from torch import Tensor, nn

from lora_lab._checks import check_int, check_positive
from lora_lab.lab.cache import cache_dir, read_tensors, write_tensors
from lora_lab.lab.llm import train_lm

#: Bump when `train_lm` changes what a given start produces: older entries are then ignored.
LM_RUNS_VERSION = 1


def run_key(model: nn.Module, blocks: Tensor, **settings) -> str:
    """A 16-hex digest of the model's every parameter and buffer, the blocks and `settings`."""
    if not isinstance(blocks, Tensor):
        raise TypeError(f"blocks must be a torch.Tensor of token ids, got {type(blocks).__name__}")
    digest = hashlib.sha256(json.dumps({"v": LM_RUNS_VERSION, **settings}, sort_keys=True).encode())
    state = model.state_dict(keep_vars=False)
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    digest.update(blocks.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def _trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _load(path, model: nn.Module) -> tuple[list[float], float] | None:
    if not path.exists():
        return None
    params = _trainable(model)
    try:
        meta, tensors = read_tensors(path)
        if set(tensors) != set(params) or any(tensors[n].shape != p.shape for n, p in params.items()):
            return None
        losses, seconds = json.loads(meta["losses"]), float(meta["seconds"])
    except Exception as error:  # a truncated or corrupt file: a miss
        warnings.warn(f"unreadable cached LM run {path.name} ({type(error).__name__}): training again",
                      stacklevel=3)
        return None
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[name])
    return losses, seconds


def cached_train_lm(model: nn.Module, blocks: Tensor, steps: int, batch_size: int = 4, lr: float = 1e-3,
                    seed: int = 0) -> tuple[list[float], float]:
    """`train_lm(model, blocks, steps, batch_size, lr, seed)`, read from the cache when this exact
    start was trained before. Returns (step losses, seconds the training took when it ran)."""
    settings = {"steps": check_int("steps", steps, low=1),
                "batch_size": check_int("batch_size", batch_size, low=1),
                "lr": check_positive("lr", lr), "seed": check_int("seed", seed, low=0)}
    if not _trainable(model):
        raise ValueError("model has no trainable parameters; add LoRA (or unfreeze something) first")
    path = cache_dir("runs") / f"lm-v{LM_RUNS_VERSION}-{run_key(model, blocks, **settings)}.safetensors"
    found = _load(path, model)
    if found is not None:
        return found
    start = time.perf_counter()
    losses = train_lm(model, blocks, **settings)
    seconds = time.perf_counter() - start
    write_tensors(path, _trainable(model), {"losses": json.dumps(losses), "seconds": repr(seconds)})
    return losses, seconds
