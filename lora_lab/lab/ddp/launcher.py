"""Data-parallel fine-tuning on PyTorch's own engine: DDP over gloo on CPU, started by torchrun.

`launch(world_size=2, method="lora")` runs `torchrun` (`lora_lab.lab.ddp.torchrun`) with
`world_size` processes on this machine, its rendezvous on 127.0.0.1; each runs
`lora_lab.lab.ddp.rank`: the experiments' model wrapped in `DistributedDataParallel`, trained on
its shard of every global batch, with a communication hook that wraps DDP's default all-reduce and
counts the bytes of every gradient bucket it sends, so the traffic per step is measured, not
computed. At the end the ranks compare their trainable tensors (they must be identical: that is
what data parallelism promises), write their results to files, and the launcher reads them back
into a `DistResult`. Failures stop every rank; no process is left running.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from lora_lab._checks import check_choice, check_int, check_positive
from lora_lab.lab.ddp.rank import (  # noqa: F401 (ByteCounter, counting_hook re-exported)
    COMPRESS,
    HOST,
    METHODS,
    ByteCounter,
    command_line,
    counting_hook,
    load_report,
)
from lora_lab.lab.ddp.torchrun import failure, run, shell_line, torchrun_command


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
    first_step_state: dict = field(repr=False, default_factory=dict)  # rank 0's, after step 1
    gathered_difference: float = 0.0  # max |difference| the ranks found with all_gather
    restarts: int = 0  # how often torchrun started the ranks again before they finished (max_restarts)
    teardown_crashes: int = 0  # 1 when a rank crashed after every result was saved (results kept)
    command: str = ""  # the torchrun command line that ran, its output folder written OUT

    @property
    def max_rank_difference(self) -> float:
        """Largest |difference| between rank 0's trainable tensors and any other rank's."""
        return max((max_difference(self.states[0], other) for other in self.states[1:]), default=0.0)

    @property
    def identical(self) -> bool:
        """True when every rank ends with bit-identical trainable tensors."""
        return self.max_rank_difference == 0.0 and self.gathered_difference == 0.0


def max_difference(a: dict, b: dict) -> float:
    """Largest |a[k] - b[k]| over two dicts of tensors with the same names and shapes."""
    if a.keys() != b.keys():
        raise ValueError(f"the two states name different tensors: {sorted(a.keys() ^ b.keys())}")
    return max((float((a[k] - b[k]).abs().max()) for k in a), default=0.0)


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


@contextlib.contextmanager
def one_rank_group():
    """A gloo process group of this process alone (world size 1, on 127.0.0.1), destroyed on exit:
    enough to build DDP or FSDP and run them here, without starting any process."""
    check_backend()
    dist.init_process_group("gloo", init_method=f"tcp://{HOST}:{free_port()}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


# ---- the launcher ------------------------------------------------------------------------------

def launch(world_size: int = 2, method: str = "lora", steps: int = 40, **options) -> DistResult:
    """Fine-tune `method` with DDP in `world_size` local processes; return the measured DistResult.

    `options` are `launch_all`'s (port, seed, global_batch, r, compress, timeout_s, max_restarts).
    """
    return launch_all(world_size, (method,), steps, **options)[0]


def launch_all(world_size: int = 2, methods=("full", "lora"), steps: int = 40, port: int | None = None,
               seed: int = 0, global_batch: int = 32, r: int = 4, compress: str = "none",
               timeout_s: float = 300.0, max_restarts: int = 1) -> list:
    """Fine-tune each of `methods` in turn with DDP in `world_size` local processes, started by
    `torchrun` (one launch, rendezvous on 127.0.0.1:`port`); one DistResult per method, in order.

    Every step uses `global_batch` images split evenly over the ranks; `compress="fp16"` sends the
    gradients as fp16 (DDP's fp16_compress_hook). When a rank fails (a Python error or a signal),
    torchrun stops every rank and starts the whole group again, up to `max_restarts` times
    (`--max-restarts`); the seeds make the result the same, and `DistResult.restarts` says it
    happened. When no restart is left, this raises RuntimeError naming the rank, with its log's last
    lines. A crash in the teardown, after every rank has saved all its results and passed the final
    barrier, loses nothing: the results are kept and `DistResult.teardown_crashes` counts it (torch
    2.13's gloo can abort with "terminate called without an active exception" while a process
    group is destroyed).
    """
    cfg = _config(world_size, methods, steps, seed, global_batch, r, compress, timeout_s)
    max_restarts = check_int("max_restarts", max_restarts, low=0)
    check_backend()
    endpoint = f"{HOST}:{free_port() if port is None else check_port(port)}"
    world_size = cfg["world_size"]
    with tempfile.TemporaryDirectory(prefix="lora_lab_ddp_") as out_dir:
        command = [*torchrun_command(world_size, endpoint, max_restarts=max_restarts),
                   *command_line(cfg, out_dir)]
        status = run(command, out_dir, cfg["timeout_s"])
        teardown_crashes = 0
        if status != 0:
            if not all((Path(out_dir) / f"done.rank{k}").exists() for k in range(world_size)):
                who, tail = failure(out_dir)
                raise RuntimeError(f"{who} failed, so torchrun stopped every rank; no restart left "
                                   f"(max_restarts={max_restarts}){tail}")
            teardown_crashes = 1  # every result was saved before the crash: keep them
        return [_result(cfg, m, [load_report(out_dir, m, k) for k in range(world_size)], command,
                        out_dir, teardown_crashes) for m in cfg["methods"]]


def _config(world_size, methods, steps, seed, global_batch, r, compress, timeout_s) -> dict:
    """launch_all's options, checked, as the dict the rank's command line is written from."""
    world_size = check_int("world_size", world_size, low=1)
    cfg = {"world_size": world_size, "methods": _check_methods(methods),
           "steps": check_int("steps", steps, low=1), "seed": check_int("seed", seed, low=0),
           "r": check_int("r", r, low=1),
           "global_batch": check_int("global_batch", global_batch, low=world_size),
           "compress": check_choice("compress", compress, COMPRESS),
           "timeout_s": check_positive("timeout_s", timeout_s)}
    if global_batch % world_size:
        raise ValueError(f"global_batch must be a multiple of world_size={world_size}, got {global_batch}")
    return cfg


def _check_methods(methods) -> tuple:
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise ValueError(f"methods must name at least one of {list(METHODS)}, got ()")
    return tuple(check_choice("method", m, METHODS) for m in methods)


def _result(cfg: dict, method: str, reports: list, command: list, out_dir: str,
            teardown_crashes: int) -> DistResult:
    first = reports[0]
    shown = shell_line(command).replace(out_dir, "OUT")
    return DistResult(method, cfg["r"], cfg["world_size"], cfg["steps"], first["trainable"],
                      first["total"], first["bytes_per_element"], first["bytes_per_step"], first["buckets"],
                      first["seconds_per_step"], first["accuracy"], [rep["state"] for rep in reports],
                      first["first_step_state"], max(rep["gathered_difference"] for rep in reports),
                      min(rep["attempt"] for rep in reports), teardown_crashes, shown)


# ---- the table and the command line ------------------------------------------------------------

def _label(result: DistResult) -> str:
    from lora_lab.lab.runs import RunSpec

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
    """`python -m lora_lab.lab.ddp.launcher [--world-size N] [--steps S] [--methods full lora] [--port P]`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lora_lab.lab.ddp.launcher",
                                     description="Fine-tune with DDP (gloo, CPU, 127.0.0.1) and "
                                                 "measure the gradient bytes all-reduced per step.")
    parser.add_argument("--world-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--methods", nargs="+", default=["full", "lora"], choices=METHODS)
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--compress", default="none", choices=sorted(COMPRESS))
    args = parser.parse_args(argv)
    results = launch_all(args.world_size, args.methods, args.steps, port=args.port, compress=args.compress)
    print(results[0].command)
    print(format_table(results))
    print(format_timings(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
