"""Data-parallel fine-tuning on PyTorch's own engine: DDP over gloo on CPU, gradient bytes counted.

`launch(world_size=2, method="lora")` starts `world_size` processes on 127.0.0.1 (one per rank,
`torch.multiprocessing`); each builds the experiments' model (`experiments.prepare`), wraps it in
`DistributedDataParallel` and trains on its shard of every global batch. A communication hook
wraps DDP's default all-reduce and counts the bytes of every gradient bucket it sends, so the
traffic per step is measured, not computed. At the end the ranks compare their trainable tensors
(they must be identical: that is what data parallelism promises) and the launcher returns a
`DistResult`. Failures stop every rank; no process is left running.
"""

# No `from __future__ import annotations`: DDP reads the hook's annotations at run time and
# wants the real objects (dist.GradBucket, Future[Tensor]), not strings.
import os
import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook, fp16_compress_hook
from torch.nn.parallel import DistributedDataParallel

from lora_lab._checks import check_choice, check_int, check_positive

METHODS = ("full", "lora", "head")
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


@dataclass
class DistResult:
    """One DDP run: measured bytes and seconds per step (rank 0), accuracy, every rank's state."""

    method: str
    r: int                      # LoRA's rank (unused by the other methods)
    world_size: int
    steps: int
    trainable: int
    total: int
    bytes_per_element: int
    bytes_per_step: list
    buckets: list               # bucket sizes (elements) of the last step
    seconds_per_step: list      # wall clock, rank 0: noisy, never in a test
    accuracy: float             # rank 0's model on the task's test set
    states: list = field(repr=False)  # one dict name -> tensor of trainable parameters per rank
    gathered_difference: float = 0.0  # max |difference| the ranks found with all_gather

    @property
    def max_rank_difference(self) -> float:
        """Largest |difference| between rank 0's trainable tensors and any other rank's."""
        first = self.states[0]
        return max((float((s[k] - first[k]).abs().max()) for s in self.states[1:] for k in first),
                   default=0.0)

    @property
    def identical(self) -> bool:
        """True when every rank ends with bit-identical trainable tensors."""
        return self.max_rank_difference == 0.0 and self.gathered_difference == 0.0


# ---- checks before anything starts -------------------------------------------------------------

def check_backend() -> None:
    """Raise a clear error when this torch build cannot run gloo (the CPU backend used here)."""
    if not dist.is_available() or not dist.is_gloo_available():
        raise RuntimeError("torch.distributed with the gloo backend is not available in this torch build "
                           f"(torch {torch.__version__}); install a standard CPU or CUDA build of torch")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def check_port(port) -> int:
    """`port` must be an integer in [1024, 65535] that can be bound on 127.0.0.1 now."""
    port = check_int("port", port, low=1024, high=65535)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError as exc:
            raise ValueError(f"port {port} on {HOST} is in use ({exc.strerror}); pass another port "
                             "or port=None to let the launcher pick a free one") from exc
    return port


# ---- one rank ----------------------------------------------------------------------------------

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
    from lora_lab.data import load_task
    from lora_lab.experiments import RunSpec, prepare
    from lora_lab.models import base_model
    from lora_lab.train import accuracy, make_deterministic

    make_deterministic(cfg["seed"])
    torch.set_num_threads(1)  # one thread per rank: ranks share the cores, and sums stay in one order
    spec = RunSpec(method=method, r=cfg["r"], seed=cfg["seed"])
    model = prepare(base_model(), spec)
    ddp = DistributedDataParallel(model, broadcast_buffers=False)  # broadcasts rank 0's weights once
    counter = ByteCounter(wire_dtype=COMPRESS[cfg["compress"]])
    ddp.register_comm_hook(counter, counting_hook)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=spec.learning_rate)
    task = load_task(spec.task)
    batches = _batches(len(task.x_train), cfg["global_batch"], rank, cfg["world_size"], cfg["seed"])
    out = {"bytes_per_step": [], "seconds_per_step": [], "buckets": []}
    for _ in range(cfg["steps"]):
        idx = next(batches)
        start = time.perf_counter()
        loss = F.cross_entropy(ddp(task.x_train[idx]), task.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # the hook all-reduces each bucket as soon as its gradients are ready
        opt.step()
        out["seconds_per_step"].append(time.perf_counter() - start)
        sent, out["buckets"] = counter.take()
        out["bytes_per_step"].append(sent)
    width = params[0].element_size() if counter.wire_dtype is None else counter.wire_dtype.itemsize
    return {**out, "accuracy": accuracy(model, task.x_test, task.y_test), "bytes_per_element": width,
            "state": {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad},
            "gathered_difference": _gathered_difference(params, cfg["world_size"]),
            "trainable": sum(p.numel() for p in params), "total": sum(p.numel() for p in model.parameters())}


def _gathered_difference(params: list, world_size: int) -> float:
    """Max |difference| between this rank's flattened trainable tensors and every other rank's."""
    mine = torch.cat([p.detach().reshape(-1) for p in params])  # (trainable,)
    everyone = [torch.empty_like(mine) for _ in range(world_size)]
    dist.all_gather(everyone, mine)
    return max(float((other - mine).abs().max()) for other in everyone)


def _worker(rank: int, cfg: dict, out_dir: str) -> None:
    """The function each spawned process runs: join the group, train, save, always leave it."""
    log = os.open(os.path.join(out_dir, f"rank{rank}.log"), os.O_WRONLY | os.O_CREAT)
    os.dup2(log, 1), os.dup2(log, 2)  # gloo's chatter goes to a file, not into a notebook cell
    dist.init_process_group("gloo", init_method=f"tcp://{HOST}:{cfg['port']}", rank=rank,
                            world_size=cfg["world_size"], timeout=timedelta(seconds=cfg["timeout_s"]))
    try:
        if rank == cfg["fail_rank"]:
            raise RuntimeError(f"rank {rank} failed on purpose (fail_rank={rank})")
        for method in cfg["methods"]:  # one process group, the methods one after the other
            torch.save(_train(rank, cfg, method), os.path.join(out_dir, f"{method}.rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


# ---- the launcher ------------------------------------------------------------------------------

def launch(world_size: int = 2, method: str = "lora", steps: int = 40, **options) -> DistResult:
    """Fine-tune `method` with DDP in `world_size` local processes; return the measured DistResult.

    `options` are `launch_all`'s (port, seed, global_batch, r, compress, timeout_s, fail_rank).
    """
    return launch_all(world_size, (method,), steps, **options)[0]


def launch_all(world_size: int = 2, methods=("full", "lora"), steps: int = 40, port: int | None = None,
               seed: int = 0, global_batch: int = 32, r: int = 4, compress: str = "none",
               timeout_s: float = 300.0, fail_rank: int | None = None) -> list:
    """Fine-tune each of `methods` in turn with DDP in `world_size` local processes (one launch).

    Every step uses `global_batch` images split evenly over the ranks; `compress="fp16"` sends the
    gradients as fp16 (DDP's fp16_compress_hook). `fail_rank` makes that rank raise at start, to
    show that the launcher stops the others. Returns one DistResult per method, in order.
    """
    world_size = check_int("world_size", world_size, low=1)
    methods = _check_methods(methods)
    cfg = {"world_size": world_size, "methods": methods, "steps": check_int("steps", steps, low=1),
           "seed": check_int("seed", seed, low=0), "r": check_int("r", r, low=1),
           "global_batch": check_int("global_batch", global_batch, low=world_size),
           "compress": check_choice("compress", compress, COMPRESS),
           "timeout_s": check_positive("timeout_s", timeout_s),
           "fail_rank": None if fail_rank is None else check_int("fail_rank", fail_rank, 0, world_size - 1)}
    if global_batch % world_size:
        raise ValueError(f"global_batch must be a multiple of world_size={world_size}, got {global_batch}")
    check_backend()
    cfg["port"] = free_port() if port is None else check_port(port)
    with tempfile.TemporaryDirectory(prefix="lora_lab_ddp_") as out_dir:
        _run_processes(world_size, cfg, out_dir)
        return [_result(cfg, m, [torch.load(Path(out_dir) / f"{m}.rank{k}.pt") for k in range(world_size)])
                for m in methods]


def _check_methods(methods) -> tuple:
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise ValueError(f"methods must name at least one of {list(METHODS)}, got ()")
    return tuple(check_choice("method", m, METHODS) for m in methods)


def _run_processes(world_size: int, cfg: dict, out_dir: str) -> None:
    """Start the ranks and wait; on any failure or timeout stop them all, then raise."""
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException

    context = mp.start_processes(_worker, args=(cfg, out_dir), nprocs=world_size, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + cfg["timeout_s"]
    try:
        while not context.join(timeout=1.0, grace_period=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world_size} ranks did not finish within timeout_s="
                                   f"{cfg['timeout_s']:g} s; they were stopped")
    except ProcessException as exc:
        raise RuntimeError(f"rank {exc.error_index} failed, so every rank was stopped: "
                           f"{_last_line(str(exc))}") from exc
    finally:
        _stop(context.processes)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def _stop(processes) -> None:
    """Terminate, then kill, whatever is still alive; reap every process."""
    for p in processes:
        if p.is_alive():
            p.terminate()
    for p in processes:
        p.join(5)
        if p.is_alive():
            p.kill()
            p.join()


def _result(cfg: dict, method: str, reports: list) -> DistResult:
    first = reports[0]
    return DistResult(method, cfg["r"], cfg["world_size"], cfg["steps"], first["trainable"], first["total"],
                      first["bytes_per_element"], first["bytes_per_step"], first["buckets"],
                      first["seconds_per_step"], first["accuracy"], [rep["state"] for rep in reports],
                      max(rep["gathered_difference"] for rep in reports))


# ---- the table and the command line ------------------------------------------------------------

def _label(result: DistResult) -> str:
    from lora_lab.experiments import RunSpec

    return RunSpec(method=result.method, r=result.r).label()  # 'full', 'LoRA q,v r=4', 'head'


def per_step(values: list) -> int:
    """The value every step shares (DDP sends the same buckets each step); raise if they differ."""
    if len(set(values)) != 1:
        raise ValueError(f"the bytes differ between steps: {sorted(set(values))}")
    return values[0]


def format_table(results: list) -> str:
    """Measured bytes all-reduced per step, trainable parameters, accuracy; then the ratio."""
    rows = [f"{'method':<14}{'ranks':>6}{'trainable':>11}{'bytes/step':>12}{'buckets':>9}"
            f"{'accuracy':>10}  ranks identical"]
    for res in results:
        rows.append(f"{_label(res):<14}{res.world_size:>6}{res.trainable:>11,}{per_step(res.bytes_per_step):>12,}"
                    f"{len(res.buckets):>9}{res.accuracy:>10.3f}  {'yes' if res.identical else 'NO'}")
    by = {res.method: per_step(res.bytes_per_step) for res in results}
    if "full" in by and "lora" in by:
        rows.append(f"gradient bytes per step, full / LoRA: {by['full'] / by['lora']:.1f}×")
    return "\n".join(rows)


def format_timings(results: list) -> str:
    """Median wall-clock milliseconds per step on rank 0 (noisy: the ranks share the CPU)."""
    return "\n".join(f"{_label(res):<14} {1e3 * statistics.median(res.seconds_per_step):8.1f} ms/step "
                     f"(median of {res.steps}, rank 0)" for res in results)


def main(argv: list | None = None) -> int:
    """`python -m lora_lab.distributed [--world-size N] [--steps S] [--methods full lora] [--port P]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lora_lab.distributed",
                                     description="Fine-tune with DDP (gloo, CPU, 127.0.0.1) and "
                                                 "measure the gradient bytes all-reduced per step.")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--methods", nargs="+", default=["full", "lora"], choices=METHODS)
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--compress", default="none", choices=sorted(COMPRESS))
    args = parser.parse_args(argv)
    results = launch_all(args.world_size, args.methods, args.steps, port=args.port, compress=args.compress)
    print(format_table(results))
    print(format_timings(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
