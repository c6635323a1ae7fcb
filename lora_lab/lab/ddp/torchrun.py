"""Start the ranks with PyTorch's own launcher, `torchrun` (`python -m torch.distributed.run`).

`torchrun_command` writes the command line a user types, on one machine or on several:

    torchrun --nnodes 2 --nproc-per-node 8 --node-rank 0 --rdzv-backend c10d
             --rdzv-endpoint node0:29500 --max-restarts 1 -m lora_lab.lab.ddp.rank --out DIR ...

the same on every node but for `--node-rank`; `shell_line` puts `ENV` in front. `run` runs that
very command on this machine, with the rendezvous on 127.0.0.1, waits for it, and makes sure that
nothing it started is left running, whatever happens. torchrun does the rest: it starts
`--nproc-per-node` processes, stops all of them when one fails, and starts the whole group again up
to `--max-restarts` times. `gloo_interface` picks the network interface a rank's gloo uses.
"""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from lora_lab._checks import check_int

# With a c10d rendezvous, torchrun lends its rendezvous store to the ranks' init_process_group;
# after a restart the new ranks can then read the addresses the dead ones published, and
# gloo's first connection fails or hangs (pytorch/pytorch#135712; seen here with torch 2.13).
# This switch gives every attempt its own store, which rank 0 hosts.
ENV = {"TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}


def torchrun_command(nproc_per_node: int, endpoint: str, nnodes: int = 1, node_rank: int = 0,
                     max_restarts: int = 1) -> list:
    """torchrun's options, as a list of words: `nnodes` machines with `nproc_per_node` ranks each,
    meeting at the c10d rendezvous `endpoint` ("HOST:PORT", on the node with `node_rank` 0)."""
    nproc_per_node = check_int("nproc_per_node", nproc_per_node, low=1)
    nnodes = check_int("nnodes", nnodes, low=1)
    node_rank = check_int("node_rank", node_rank, low=0, high=nnodes - 1)
    max_restarts = check_int("max_restarts", max_restarts, low=0)
    host, _, port = str(endpoint).rpartition(":")
    if not isinstance(endpoint, str) or not host or not port.isdigit():
        raise ValueError(f"endpoint must be 'HOST:PORT' such as '127.0.0.1:29500', got {endpoint!r}")
    return ["torchrun", "--nnodes", str(nnodes), "--nproc-per-node", str(nproc_per_node),
            "--node-rank", str(node_rank), "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint,
            "--max-restarts", str(max_restarts)]


def shell_line(command: list) -> str:
    """`command` as one line to type in a shell, `ENV`'s settings first."""
    return " ".join([*(f"{k}={v}" for k, v in ENV.items()), *command])


def run(command: list, out_dir: str, timeout_s: float) -> int:
    """Run `command` (a `torchrun ...` list) here, torchrun's own output going to
    OUT_DIR/torchrun.log; return its exit status. After `timeout_s` seconds, stop it (torchrun
    stops its ranks) and raise TimeoutError. Either way, no process of this launch outlives it."""
    argv = [sys.executable, "-m", "torch.distributed.run", *command[1:]]  # what `torchrun` runs
    with open(Path(out_dir) / "torchrun.log", "ab") as log:
        # its own session: a ^C in the notebook stops it through `_stop`, in order
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **ENV}, start_new_session=True)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(f"torchrun did not finish within timeout_s={timeout_s:g} s; it and its "
                               "ranks were stopped") from None
        finally:
            _stop(proc, out_dir)


def _stop(proc: subprocess.Popen, out_dir: str) -> None:
    """SIGTERM to torchrun (it then stops its ranks), SIGKILL if it lingers; then kill any rank
    of this launch still alive (one that torchrun could not stop, or that it never knew)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for pid in processes_running(str(out_dir)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def processes_running(marker: str) -> list:
    """Process ids whose command line contains `marker` (a launch's output folder names its
    torchrun and its ranks), zombies excepted; empty where /proc does not exist (not Linux)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue  # gone meanwhile, or not ours to read
        if marker in cmdline and state != "Z" and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def failure(out_dir: str) -> tuple:
    """What failed, from torchrun's summary ("Root Cause"): ('rank 1 (exit code -6, SIGABRT)',
    the last lines of that rank's own log), the log's part '' when there is none."""
    text = (Path(out_dir) / "torchrun.log").read_text(errors="replace")
    cause = re.search(r"Root Cause.*?rank\s*:\s*(\d+).*?exitcode\s*:\s*(-?\d+)[^\n]*?(?:\((SIG\w+)\))?\s*\n",
                      text, re.S)
    if cause is None:
        lines = [line for line in text.splitlines() if line.strip()]
        return f"torchrun ({lines[-1] if lines else 'no output'})", ""
    rank, code, sig = cause.groups()
    return f"rank {rank} (exit code {code}{', ' + sig if sig else ''})", log_tail(out_dir, int(rank))


def log_tail(out_dir: str, rank: int, lines: int = 4) -> str:
    """The last messages a rank wrote to its log (its stdout and stderr: a C++ abort shows up only
    there), indented under the error, traceback frames left out; '' when it wrote nothing."""
    try:
        text = (Path(out_dir) / f"rank{rank}.log").read_text(errors="replace")
    except OSError:
        return ""
    text = re.sub(r"(?m)^\[rank\d+\]: ?", "", text)  # torch's prefix on a rank's traceback lines
    frames = ("Traceback (", "Current thread ", "Extension modules:")
    kept = [line for line in text.splitlines() if line.strip() and not line.startswith(frames)
            and (not line[0].isspace() or line.lstrip().startswith("what()"))]
    return "".join(f"\n    rank {rank} log: {line.strip()}" for line in kept[-lines:])


# ---- where gloo connects -------------------------------------------------------------------------

def loopback_interface() -> str | None:
    """The name of this machine's loopback network interface ('lo' on Linux, 'lo0' on macOS), or
    None when none is found."""
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:  # no interface list on this platform
        return None
    return next((n for n in ("lo", "lo0") if n in names), None)


def gloo_interface(master_addr: str) -> str | None:
    """The interface to pin gloo to: the loopback one when the job's master address is a loopback
    address (a single-machine run), else None (several nodes: gloo must use a real interface)."""
    try:
        loopback = ipaddress.ip_address(socket.gethostbyname(master_addr)).is_loopback
    except (OSError, ValueError, UnicodeError):
        return None
    return loopback_interface() if loopback else None
