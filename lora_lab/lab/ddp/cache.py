"""DDP launches remembered in the runs cache: `cached_launch_all(...)` is `launch_all(...)` with a
memory, for the notebook (`11_scale_out`), whose second Run All then starts no process.

The key is everything the results depend on: the world size, the methods, the steps, the seed, the
global batch, LoRA's r, the compression, the training code's version (`RUNS_VERSION`, and
`DDP_RUNS_VERSION` here) and the base checkpoint's bytes. The port, the timeout and the restarts
allowed are not in it: they change how a launch runs, not what it computes. A hit returns the
DistResults of the launch that wrote the entry, its timings and command line included; a miss
launches, then writes `<cache>/runs/ddp-v<DDP_RUNS_VERSION>-<digest>.safetensors` atomically (the
trained tensors; the rest as JSON in its metadata). A file that cannot be read is a miss, with a
warning, never a crash. `launch_all` itself always launches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings

from lora_lab.lab.cache import cache_dir, read_tensors, write_tensors
from lora_lab.lab.ddp.launcher import DistResult, _config, launch_all
from lora_lab.lab.ddp.rank import FAULT_ENV
from lora_lab.lab.models import checkpoint_path, file_sha256
from lora_lab.lab.runs import RUNS_VERSION

#: Bump when the rank's training changes what a launch computes: older entries are then ignored.
DDP_RUNS_VERSION = 1
_TENSORS = ("states", "first_step_state")  # the DistResult fields stored as tensors


def launch_key(world_size: int = 2, methods=("full", "lora"), steps: int = 40, seed: int = 0,
               global_batch: int = 32, r: int = 4, compress: str = "none") -> str:
    """A 16-hex digest of the checked launch settings, the code's versions and the base's bytes."""
    cfg = _config(world_size, methods, steps, seed, global_batch, r, compress, timeout_s=1.0)
    cfg.pop("timeout_s")
    text = json.dumps({"ddp": DDP_RUNS_VERSION, "runs": RUNS_VERSION, "base": file_sha256(checkpoint_path()),
                       **cfg}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def launch_path(**settings):
    """The cache file of a launch: `<cache>/runs/ddp-v<DDP_RUNS_VERSION>-<launch_key>.safetensors`."""
    return cache_dir("runs") / f"ddp-v{DDP_RUNS_VERSION}-{launch_key(**settings)}.safetensors"


def _save(path, results: list) -> None:
    tensors, meta = {}, []
    for i, res in enumerate(results):
        for k, state in enumerate(res.states):
            tensors.update({f"{i}/states/{k}/{n}": t.clone() for n, t in state.items()})
        tensors.update({f"{i}/first_step_state/{n}": t for n, t in res.first_step_state.items()})
        meta.append({f.name: getattr(res, f.name) for f in dataclasses.fields(res) if f.name not in _TENSORS})
    write_tensors(path, tensors, {"results": json.dumps(meta)})  # clone: ranks' states may share tensors


def _load(path) -> list | None:
    if not path.exists():
        return None
    try:
        meta, tensors = read_tensors(path)
        fields = json.loads(meta["results"])
        states = [[{} for _ in range(f["world_size"])] for f in fields]
        firsts = [{} for _ in fields]
        for key, tensor in tensors.items():  # "i/states/k/name" or "i/first_step_state/name"
            i, kind, rest = key.split("/", 2)
            if kind == "states":
                k, name = rest.split("/", 1)
                states[int(i)][int(k)][name] = tensor
            elif kind == "first_step_state":
                firsts[int(i)][rest] = tensor
            else:
                raise ValueError(f"an unknown tensor {key!r}")
        if not fields or not all(all(rank) for rank in states):
            raise ValueError("an entry without every rank's tensors")
        results = [DistResult(**f, states=s, first_step_state=first)
                   for f, s, first in zip(fields, states, firsts, strict=True)]
    except Exception as error:  # a truncated or corrupt file (a kernel killed mid-save): a miss
        warnings.warn(f"unreadable cached DDP launch {path.name} ({type(error).__name__}): launching again",
                      stacklevel=3)
        return None
    return results


def cached_launch_all(world_size: int = 2, methods=("full", "lora"), steps: int = 40, seed: int = 0,
                      global_batch: int = 32, r: int = 4, compress: str = "none", **options) -> list:
    """`launch_all(world_size, methods, steps, seed=…, …)`, read from the runs cache when a launch
    with these settings ran before. `options` (port, timeout_s, max_restarts) go to `launch_all`
    on a miss. With the test-only fault injection (`rank.FAULT_ENV`) set, it always launches and
    keeps nothing."""
    settings = {"world_size": world_size, "methods": methods, "steps": steps, "seed": seed,
                "global_batch": global_batch, "r": r, "compress": compress}
    path = launch_path(**settings)  # checks the settings before anything is read or started
    if os.environ.get(FAULT_ENV):
        return launch_all(**settings, **options)
    found = _load(path)
    if found is not None:
        return found
    results = launch_all(**settings, **options)
    _save(path, results)
    return results


def cached_launch(world_size: int = 2, method: str = "lora", steps: int = 40, **options) -> DistResult:
    """`launch(world_size, method, steps, …)` through the runs cache (`cached_launch_all`)."""
    return cached_launch_all(world_size, (method,), steps, **options)[0]
