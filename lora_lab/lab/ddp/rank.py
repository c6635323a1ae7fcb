"""One DDP rank, as `torchrun` starts it: the byte-counting communication hook and the training loop.

`torchrun ... -m lora_lab.lab.ddp.rank --out DIR --methods full lora --steps 60` starts one process
per rank; `torchrun` sets RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, and each process runs
`main`: it joins the gloo process group (`init_method="env://"`), builds the experiments' model
(`lora_lab.lab.runs.prepare`), wraps it in `DistributedDataParallel`, registers `counting_hook`,
trains on its share of every global batch and writes what it measured to DIR: tensors as
safetensors, the rest as JSON (`save_report`, `load_report`), never pickle.

Test-only fault injection: the environment variable LORA_LAB_DDP_FAULT="RANK:KIND:MOMENT" makes
that rank `raise` (a Python error) or `abort` (SIGABRT, as a crash in gloo's C++ code would) at
`start` (after joining the group) or at `exit` (after the final barrier), in torchrun's first
attempt only (TORCHELASTIC_RESTART_COUNT=0), so a restart shows what `--max-restarts` does.
"""

# No `from __future__ import annotations`: DDP reads the hook's annotations at run time and
# wants the real objects (dist.GradBucket, Future[Tensor]), not strings.
import argparse
import json
import os
import re
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook, fp16_compress_hook
from torch.distributed.elastic.multiprocessing.errors import record
from torch.nn.parallel import DistributedDataParallel

from lora_lab.lab.ddp.torchrun import gloo_interface

COMPRESS = {"none": None, "fp16": torch.float16}  # what the hook sends: the bucket as is, or fp16
HOST = "127.0.0.1"  # the local launcher's rendezvous: nothing it starts leaves the machine
METHODS = ("full", "lora", "head")
FAULT_ENV = "LORA_LAB_DDP_FAULT"  # test-only, see the module docstring


@dataclass
class ByteCounter:
    """The comm hook's state: its process group and what it sent during the current step."""

    process_group: object = None
    wire_dtype: torch.dtype | None = None  # None: the gradients' own dtype
    bytes: int = 0
    buckets: list = field(default_factory=list)  # elements per bucket, in the order sent

    def take(self) -> tuple[int, list]:
        """(bytes, bucket sizes) of the step that just ended; reset for the next one."""
        out = (self.bytes, self.buckets)
        self.bytes, self.buckets = 0, []
        return out


def counting_hook(state: ByteCounter, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP's default all-reduce (or its fp16-compressed twin), counting the bucket's bytes first."""
    grads = bucket.buffer()  # (n,) every gradient in this bucket, flattened
    width = grads.element_size() if state.wire_dtype is None else state.wire_dtype.itemsize
    state.bytes += grads.numel() * width
    state.buckets.append(grads.numel())
    hook = allreduce_hook if state.wire_dtype is None else fp16_compress_hook
    return hook(state.process_group, bucket)


def _batches(n: int, global_batch: int, rank: int, world_size: int, seed: int):
    """Endless index batches for `rank`: every rank shuffles alike (same seed), then takes its
    interleaved share of each global batch, as DistributedSampler does.  Yields (global_batch / N,)."""
    epoch = 0
    while True:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        for start in range(0, n - global_batch + 1, global_batch):  # full global batches only
            yield order[start:start + global_batch][rank::world_size]
        epoch += 1


def _train(rank: int, cfg: dict, method: str) -> dict:
    """Train this rank's DDP replica of `method` for cfg['steps'] steps; return what it measured."""
    from lora_lab.lab.data import load_task
    from lora_lab.lab.models import base_model
    from lora_lab.lab.runs import RunSpec, prepare
    from lora_lab.lab.train import accuracy, make_deterministic

    make_deterministic(cfg["seed"])
    torch.set_num_threads(1)  # one thread per rank: ranks share the cores, and sums stay in one order
    spec = RunSpec(method=method, r=cfg["r"], seed=cfg["seed"])
    model = prepare(base_model(), spec)
    ddp = DistributedDataParallel(model)  # broadcasts rank 0's weights once; the model has no buffers
    counter = ByteCounter(wire_dtype=COMPRESS[cfg["compress"]])
    ddp.register_comm_hook(counter, counting_hook)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.learning_rate)
    task = load_task(spec.task)
    batches = _batches(len(task.x_train), cfg["global_batch"], rank, cfg["world_size"], cfg["seed"])
    out = {"bytes_per_step": [], "seconds_per_step": [], "buckets": []}
    for step in range(cfg["steps"]):
        idx = next(batches)
        start = time.perf_counter()
        loss = F.cross_entropy(ddp(task.x_train[idx]), task.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # the hook all-reduces each bucket as soon as its gradients are ready
        opt.step()
        out["seconds_per_step"].append(time.perf_counter() - start)
        sent, out["buckets"] = counter.take()
        out["bytes_per_step"].append(sent)
        if step == 0:
            out["first_step_state"] = _trainable_state(model)
    width = params[0].element_size() if counter.wire_dtype is None else counter.wire_dtype.itemsize
    return {**out, "accuracy": accuracy(model, task.x_test, task.y_test), "bytes_per_element": width,
            "state": _trainable_state(model),
            "gathered_difference": _gathered_difference(params, cfg["world_size"]),
            "trainable": sum(p.numel() for p in params), "total": sum(p.numel() for p in model.parameters())}


def _trainable_state(model) -> dict:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _gathered_difference(params: list, world_size: int) -> float:
    """Max |difference| between this rank's flattened trainable tensors and every other rank's."""
    mine = torch.cat([p.detach().reshape(-1) for p in params])  # (trainable,)
    everyone = [torch.empty_like(mine) for _ in range(world_size)]
    dist.all_gather(everyone, mine)
    return max(float((other - mine).abs().max()) for other in everyone)


# ---- results on disk: safetensors for tensors, JSON for the rest ------------------------------

TENSORS = ("state", "first_step_state")


def save_report(out_dir: str, method: str, rank: int, report: dict) -> None:
    """Write one rank's report as METHOD.rankK.safetensors + .json, each by a temporary file and a
    rename, so a reader never sees half a file."""
    from safetensors.torch import save_file

    stem = os.path.join(out_dir, f"{method}.rank{rank}")
    tensors = {f"{part}/{name}": t.contiguous() for part in TENSORS for name, t in report[part].items()}
    save_file(tensors, stem + ".safetensors.tmp")
    with open(stem + ".json.tmp", "w") as f:
        json.dump({k: v for k, v in report.items() if k not in TENSORS}, f)
    os.replace(stem + ".safetensors.tmp", stem + ".safetensors")
    os.replace(stem + ".json.tmp", stem + ".json")


def load_report(out_dir: str, method: str, rank: int) -> dict:
    """Read back what `save_report` wrote: the JSON fields plus one dict name -> tensor per part."""
    from safetensors.torch import load_file

    stem = os.path.join(out_dir, f"{method}.rank{rank}")
    with open(stem + ".json") as f:
        report = json.load(f)
    tensors = load_file(stem + ".safetensors")
    for part in TENSORS:
        report[part] = {k.split("/", 1)[1]: t for k, t in tensors.items() if k.startswith(part + "/")}
    return report


# ---- the process torchrun starts ----------------------------------------------------------------

def worker(cfg: dict, out_dir: str) -> None:
    """What each process runs: join the group, train every method, save, always leave the group."""
    rank, attempt = int(os.environ["RANK"]), int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    done = os.path.join(out_dir, f"done.rank{rank}")
    if os.path.exists(done):  # a mark from an earlier attempt: only this attempt's marks count
        os.remove(done)
    log = os.open(os.path.join(out_dir, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1), os.dup2(log, 2)  # gloo's chatter goes to a file, not into a notebook cell
    # gloo finds the address its ranks connect on from the host name, which may name an interface
    # whose traffic a sandbox blocks (then a rank aborts in gloo's C++ code): on one machine, pin
    # it to the loopback interface, unless the user chose one.
    if "GLOO_SOCKET_IFNAME" not in os.environ and (lo := gloo_interface(os.environ["MASTER_ADDR"])):
        os.environ["GLOO_SOCKET_IFNAME"] = lo
    dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=cfg["timeout_s"]))
    try:
        _maybe_fault(rank, attempt, "start")
        for method in cfg["methods"]:  # one process group, the methods one after the other
            save_report(out_dir, method, rank, {**_train(rank, cfg, method), "attempt": attempt})
        dist.barrier()  # every rank has saved everything: only the teardown is left
        open(done, "w").close()
        _maybe_fault(rank, attempt, "exit")
    finally:
        dist.destroy_process_group()


def _maybe_fault(rank: int, attempt: int, moment: str) -> None:
    """Raise or abort if LORA_LAB_DDP_FAULT asks this rank to, at this moment, in attempt 0."""
    spec = os.environ.get(FAULT_ENV, "")
    if spec and not re.fullmatch(r"\d+:(raise|abort):(start|exit)", spec):
        raise ValueError(f"{FAULT_ENV} must be 'RANK:raise|abort:start|exit', got {spec!r}")
    if attempt != 0 or spec.split(":")[::2] != [str(rank), moment]:
        return
    if ":raise:" in spec:
        raise RuntimeError(f"rank {rank} failed on purpose ({FAULT_ENV}={spec})")
    print(f"rank {rank} aborts on purpose ({FAULT_ENV}={spec})", flush=True)
    os.abort()


def command_line(cfg: dict, out_dir: str) -> list:
    """The arguments after `torchrun [options]` that make every process run `main` with `cfg`."""
    return ["-m", "lora_lab.lab.ddp.rank", "--out", str(out_dir), "--methods", *cfg["methods"],
            "--steps", str(cfg["steps"]), "--seed", str(cfg["seed"]), "--global-batch",
            str(cfg["global_batch"]), "--lora-r", str(cfg["r"]), "--compress", cfg["compress"],
            "--timeout-s", f"{cfg['timeout_s']:g}"]


@record  # torchrun's error summary then shows this rank's Python traceback
def main(argv: list | None = None) -> int:
    """`torchrun [options] -m lora_lab.lab.ddp.rank --out DIR [--methods ...] [--steps S] ...`."""
    parser = argparse.ArgumentParser(prog="torchrun [options] -m lora_lab.lab.ddp.rank")
    parser.add_argument("--out", required=True, help="folder for the results (made if missing)")
    parser.add_argument("--methods", nargs="+", default=["full", "lora"], choices=METHODS)
    for name, kind, default in (("steps", int, 40), ("seed", int, 0), ("global-batch", int, 32),
                                ("lora-r", int, 4), ("timeout-s", float, 300.0)):
        parser.add_argument(f"--{name}", type=kind, default=default)
    parser.add_argument("--compress", default="none", choices=sorted(COMPRESS))
    args = parser.parse_args(argv)
    cfg = {"methods": tuple(args.methods), "steps": args.steps, "seed": args.seed, "r": args.lora_r,
           "global_batch": args.global_batch, "compress": args.compress, "timeout_s": args.timeout_s,
           "world_size": int(os.environ.get("WORLD_SIZE", "0"))}
    if cfg["world_size"] < 1 or "RANK" not in os.environ:
        parser.error("RANK and WORLD_SIZE are not set: start this module with torchrun")
    if cfg["global_batch"] % cfg["world_size"]:
        parser.error(f"--global-batch must be a multiple of the world size {cfg['world_size']}, "
                     f"got {cfg['global_batch']}")
    os.makedirs(args.out, exist_ok=True)
    worker(cfg, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
