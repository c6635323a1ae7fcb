"""One DDP rank: the byte-counting communication hook and the training loop each process runs.

`lora_lab.lab.ddp.launcher.launch` starts one process per rank; each runs `worker`, which joins the
gloo process group on 127.0.0.1, builds the experiments' model (`experiments.prepare`), wraps it
in `DistributedDataParallel`, registers `counting_hook`, trains on its share of every global batch
and saves what it measured for the launcher.
"""

# No `from __future__ import annotations`: DDP reads the hook's annotations at run time and
# wants the real objects (dist.GradBucket, Future[Tensor]), not strings.
import os
import time
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook, fp16_compress_hook
from torch.nn.parallel import DistributedDataParallel

COMPRESS = {"none": None, "fp16": torch.float16}  # what the hook sends: the bucket as is, or fp16
HOST = "127.0.0.1"  # loopback only: nothing here ever leaves the machine


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


def loopback_interface() -> str | None:
    """The name of this machine's loopback network interface ('lo' on Linux, 'lo0' on macOS), or
    None when none is found."""
    import socket

    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:  # no interface list on this platform
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


def worker(rank: int, cfg: dict, out_dir: str) -> None:
    """The function each spawned process runs: join the group, train, save, always leave it."""
    log = os.open(os.path.join(out_dir, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(log, 1), os.dup2(log, 2)  # gloo's chatter goes to a file, not into a notebook cell
    # gloo picks the address its ranks connect on from the machine's host name, which may name an
    # interface whose traffic a sandbox blocks (then a rank aborts in gloo's C++ code); pin it to
    # the loopback interface, like the rendezvous on HOST.
    if (loopback := loopback_interface()) is not None:
        os.environ["GLOO_SOCKET_IFNAME"] = loopback
    dist.init_process_group("gloo", init_method=f"tcp://{HOST}:{cfg['port']}", rank=rank,
                            world_size=cfg["world_size"], timeout=timedelta(seconds=cfg["timeout_s"]))
    try:
        if rank == cfg["fail_rank"]:
            raise RuntimeError(f"rank {rank} failed on purpose (fail_rank={rank})")
        _maybe_crash(rank, cfg, out_dir, "start")
        for method in cfg["methods"]:  # one process group, the methods one after the other
            torch.save(_train(rank, cfg, method), os.path.join(out_dir, f"{method}.rank{rank}.pt"))
        dist.barrier()  # every rank has saved everything: only the teardown is left
        open(os.path.join(out_dir, f"done.rank{rank}"), "w").close()
        _maybe_crash(rank, cfg, out_dir, "exit")
    finally:
        dist.destroy_process_group()


def _maybe_crash(rank: int, cfg: dict, out_dir: str, moment: str) -> None:
    """Abort (SIGABRT, as an uncaught C++ exception in gloo would) if cfg asks this rank to, at
    this moment, in the first attempt only (a mark file remembers it across restarts)."""
    mark = os.path.join(out_dir, f"crashed.rank{rank}")
    if rank == cfg["crash_rank"] and cfg["crash_at"] == moment and not os.path.exists(mark):
        open(mark, "w").close()
        print(f"rank {rank} aborts on purpose (crash_rank={rank}, crash_at={moment!r})", flush=True)
        os.abort()
