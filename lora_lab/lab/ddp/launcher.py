"""Data-parallel fine-tuning on PyTorch's own engine: DDP over gloo on CPU, gradient bytes counted.

`launch(world_size=2, method="lora")` starts `world_size` processes on 127.0.0.1 (one per rank,
`torch.multiprocessing`); each runs `lora_lab.lab.ddp.rank.worker`: the experiments' model wrapped in
`DistributedDataParallel`, trained on its shard of every global batch, with a communication hook
that wraps DDP's default all-reduce and counts the bytes of every gradient bucket it sends, so the
traffic per step is measured, not computed. At the end the ranks compare their trainable tensors
(they must be identical: that is what data parallelism promises) and the launcher returns a
`DistResult`. Failures stop every rank; no process is left running.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from lora_lab._checks import check_choice, check_int, check_positive
from lora_lab.lab.ddp.rank import COMPRESS, HOST, ByteCounter, counting_hook, worker  # noqa: F401 (re-exported)

METHODS = ("full", "lora", "head")


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
    restarts: int = 0  # how often a crashed launch was started again (see launch_all's max_restarts)
    teardown_crashes: int = 0  # 1 when a rank crashed after every result was saved (results kept)

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

# ---- the launcher ------------------------------------------------------------------------------

def launch(world_size: int = 2, method: str = "lora", steps: int = 40, **options) -> DistResult:
    """Fine-tune `method` with DDP in `world_size` local processes; return the measured DistResult.

    `options` are `launch_all`'s (port, seed, global_batch, r, compress, timeout_s, fail_rank,
    crash_rank, crash_at, max_restarts).
    """
    return launch_all(world_size, (method,), steps, **options)[0]


def launch_all(world_size: int = 2, methods=("full", "lora"), steps: int = 40, port: int | None = None,
               seed: int = 0, global_batch: int = 32, r: int = 4, compress: str = "none",
               timeout_s: float = 300.0, fail_rank: int | None = None, crash_rank: int | None = None,
               crash_at: str = "start", max_restarts: int = 1) -> list:
    """Fine-tune each of `methods` in turn with DDP in `world_size` local processes (one launch).

    Every step uses `global_batch` images split evenly over the ranks; `compress="fp16"` sends the
    gradients as fp16 (DDP's fp16_compress_hook). Returns one DistResult per method, in order.

    Failures: a rank that raises (a Python error, which would happen again) stops every rank and
    raises here. A rank killed by a signal (a crash in C++ code, such as gloo's socket code
    aborting on a connection reset) stops every rank, and the whole launch starts again from
    scratch, up to `max_restarts` times, as `torchrun --max-restarts` does; the seeds make the
    result the same, and `DistResult.restarts` says it happened. A crash in the teardown, after
    every rank has saved all its results and passed the final barrier, loses nothing: those
    results are kept and `DistResult.teardown_crashes` counts it (torch 2.13's gloo can abort with
    "terminate called without an active exception" while a process group is destroyed).
    `fail_rank` makes that rank raise at start; `crash_rank` makes it abort (SIGABRT) at
    `crash_at` ("start" or "exit", the teardown) in the first attempt only: both show what the
    launcher does.
    """
    world_size = check_int("world_size", world_size, low=1)
    methods = _check_methods(methods)
    cfg = {"world_size": world_size, "methods": methods, "steps": check_int("steps", steps, low=1),
           "seed": check_int("seed", seed, low=0), "r": check_int("r", r, low=1),
           "global_batch": check_int("global_batch", global_batch, low=world_size),
           "compress": check_choice("compress", compress, COMPRESS),
           "timeout_s": check_positive("timeout_s", timeout_s),
           "fail_rank": _rank_or_none("fail_rank", fail_rank, world_size),
           "crash_rank": _rank_or_none("crash_rank", crash_rank, world_size),
           "crash_at": check_choice("crash_at", crash_at, ("start", "exit"))}
    max_restarts = check_int("max_restarts", max_restarts, low=0)
    if global_batch % world_size:
        raise ValueError(f"global_batch must be a multiple of world_size={world_size}, got {global_batch}")
    check_backend()
    cfg["port"] = free_port() if port is None else check_port(port)
    with tempfile.TemporaryDirectory(prefix="lora_lab_ddp_") as out_dir:
        restarts = teardown_crashes = 0
        while True:
            for mark in Path(out_dir).glob("done.rank*"):  # only this attempt's marks count
                mark.unlink()
            try:
                _run_processes(world_size, cfg, out_dir)
                break
            except RankCrashed as exc:
                if all((Path(out_dir) / f"done.rank{k}").exists() for k in range(world_size)):
                    teardown_crashes += 1  # every result was saved before the crash: keep them
                    break
                if restarts == max_restarts:
                    raise RuntimeError(f"{exc} (after {restarts} restart{'s' * (restarts != 1)}; "
                                       f"max_restarts={max_restarts})") from exc.__cause__
                restarts += 1
                cfg["port"] = free_port() if port is None else cfg["port"]
        return [_result(cfg, m, [torch.load(Path(out_dir) / f"{m}.rank{k}.pt") for k in range(world_size)],
                        restarts, teardown_crashes) for m in methods]


class RankCrashed(RuntimeError):
    """A rank was killed by a signal (a crash, not a Python error): the launch may be restarted."""


def _rank_or_none(name: str, rank, world_size: int) -> int | None:
    return None if rank is None else check_int(name, rank, 0, world_size - 1)


def _check_methods(methods) -> tuple:
    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    if not methods:
        raise ValueError(f"methods must name at least one of {list(METHODS)}, got ()")
    return tuple(check_choice("method", m, METHODS) for m in methods)


def _run_processes(world_size: int, cfg: dict, out_dir: str) -> None:
    """Start the ranks and wait; on any failure or timeout stop them all, then raise."""
    import torch.multiprocessing as mp
    from torch.multiprocessing.spawn import ProcessException, ProcessExitedException

    context = mp.start_processes(worker, args=(cfg, out_dir), nprocs=world_size, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + cfg["timeout_s"]
    try:
        while not context.join(timeout=1.0, grace_period=1.0):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {world_size} ranks did not finish within timeout_s="
                                   f"{cfg['timeout_s']:g} s; they were stopped")
    except ProcessException as exc:  # `finally` below stops the other ranks
        crashed = isinstance(exc, ProcessExitedException) and exc.signal_name is not None
        raise (RankCrashed if crashed else RuntimeError)(
            f"rank {exc.error_index} failed, so every rank was stopped: "
            f"{_last_line(str(exc))}{_log_tail(out_dir, exc.error_index)}") from exc
    finally:
        _stop(context.processes)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def _log_tail(out_dir: str, rank: int, lines: int = 8) -> str:
    """The last lines a rank wrote to its log (its stdout and stderr: a C++ abort shows up only
    there), indented under the error; empty when it wrote nothing."""
    try:
        text = (Path(out_dir) / f"rank{rank}.log").read_text(errors="replace")
    except OSError:
        return ""
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "".join(f"\n    rank {rank} log: {line}" for line in tail)


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


def _result(cfg: dict, method: str, reports: list, restarts: int, teardown_crashes: int) -> DistResult:
    first = reports[0]
    return DistResult(method, cfg["r"], cfg["world_size"], cfg["steps"], first["trainable"], first["total"],
                      first["bytes_per_element"], first["bytes_per_step"], first["buckets"],
                      first["seconds_per_step"], first["accuracy"], [rep["state"] for rep in reports],
                      first["first_step_state"], max(rep["gathered_difference"] for rep in reports),
                      restarts, teardown_crashes)


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
    print(format_table(results))
    print(format_timings(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
