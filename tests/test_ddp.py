"""One rank's parts, in this process: the byte-counting hook inside a one-rank DDP group, the batch
sharding, the rank's command line, its result files and faults; the torchrun command, what a
failure shows, and where gloo connects. Nothing here starts torchrun (tests/test_distributed.py does)."""

import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lora_lab.lab.ddp import rank, torchrun
from lora_lab.lab.ddp.launcher import one_rank_group
from lora_lab.lab.ddp.rank import ByteCounter, _batches, counting_hook


@pytest.fixture
def group():
    """A one-rank gloo process group on 127.0.0.1, destroyed afterwards."""
    with one_rank_group():
        assert dist.get_world_size() == 1 and dist.get_rank() == 0
        yield
    assert not dist.is_initialized()


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    model[0].requires_grad_(False)  # frozen, as LoRA's W0: no bucket, no bytes
    return model


@pytest.mark.parametrize(("wire", "width"), [(None, 4), (torch.float16, 2)])
def test_hook_counts_trainable_gradients_once(group, wire, width):
    model = _model()
    ddp = DistributedDataParallel(model)
    counter = ByteCounter(wire_dtype=wire)
    ddp.register_comm_hook(counter, counting_hook)
    for _ in range(2):
        ddp(torch.randn(4, 6)).sum().backward()
        sent, buckets = counter.take()
        assert sent == (5 * 3 + 3) * width and sum(buckets) == 18


def test_hook_leaves_gradients_as_plain_backward(group):
    x = torch.randn(4, 6)
    plain = _model()
    plain(x).sum().backward()
    ddp = DistributedDataParallel(_model())
    ddp.register_comm_hook(ByteCounter(), counting_hook)
    ddp(x).sum().backward()
    for p, q in zip(plain.parameters(), ddp.module.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad)


def test_byte_counter_take_resets():
    counter = ByteCounter(bytes=12, buckets=[3])
    assert counter.take() == (12, [3])
    assert counter.take() == (0, [])


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_rank_shares_make_up_the_global_batch(world_size):
    """Each global batch is split without overlap; together the ranks see what one rank would."""
    whole = _batches(50, 8, 0, 1, seed=3)
    shares = [_batches(50, 8, k, world_size, seed=3) for k in range(world_size)]
    for _ in range(13):  # past the end of an epoch (6 full batches of 8 in 50)
        parts = [next(s) for s in shares]
        assert all(len(p) == 8 // world_size for p in parts)
        assert sorted(torch.cat(parts).tolist()) == sorted(next(whole).tolist())


# ---- what torchrun is asked to run, and what comes back ----------------------------------------

CFG = {"methods": ("full", "lora"), "steps": 3, "seed": 1, "r": 2, "global_batch": 8,
       "compress": "fp16", "timeout_s": 60.0, "world_size": 2}


FAULTHANDLER = "ignore:Unable to enable fault handler"  # torchrun's @record, under pytest's capture


@pytest.mark.filterwarnings(FAULTHANDLER)
def test_the_rank_reads_back_the_command_line_it_is_given(monkeypatch, tmp_path):
    got = {}
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(rank, "worker", lambda cfg, out: got.update(cfg=cfg, out=out))
    words = rank.command_line(CFG, tmp_path / "out")
    assert words[:2] == ["-m", "lora_lab.lab.ddp.rank"]
    assert rank.main(words[2:]) == 0
    assert got == {"cfg": CFG, "out": str(tmp_path / "out")} and (tmp_path / "out").is_dir()


@pytest.mark.filterwarnings(FAULTHANDLER)
@pytest.mark.parametrize(("env", "args", "message"), [
    ({}, [], "RANK and WORLD_SIZE are not set: start this module with torchrun"),
    ({"RANK": "0", "WORLD_SIZE": "3"}, ["--global-batch", "8"],
     "--global-batch must be a multiple of the world size 3, got 8"),
])
def test_the_rank_refuses_to_start_wrongly(monkeypatch, capsys, tmp_path, env, args, message):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit):
        rank.main(["--out", str(tmp_path), *args])
    assert message in capsys.readouterr().err


def test_a_report_survives_the_round_trip_through_files(tmp_path):
    report = {"state": {"blocks.0.q.lora_B": torch.randn(3, 2), "head.bias": torch.zeros(5)},
              "first_step_state": {"head.bias": torch.ones(5)}, "bytes_per_step": [12, 12],
              "accuracy": 0.5, "attempt": 0}
    rank.save_report(str(tmp_path), "lora", 1, report)
    back = rank.load_report(str(tmp_path), "lora", 1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lora.rank1.json", "lora.rank1.safetensors"]
    assert back.keys() == report.keys() and back["bytes_per_step"] == [12, 12]
    for part in rank.TENSORS:
        assert back[part].keys() == report[part].keys()
        assert all(torch.equal(back[part][k], t) for k, t in report[part].items())


def test_faults_are_injected_only_where_and_when_asked(monkeypatch):
    monkeypatch.setenv(rank.FAULT_ENV, "1:raise:start")
    with pytest.raises(RuntimeError, match=r"rank 1 failed on purpose \(LORA_LAB_DDP_FAULT=1:raise:start\)"):
        rank._maybe_fault(1, 0, "start")
    rank._maybe_fault(0, 0, "start")  # another rank, another moment, a restart: nothing happens
    rank._maybe_fault(1, 0, "exit")
    rank._maybe_fault(1, 1, "start")
    monkeypatch.setenv(rank.FAULT_ENV, "1:explode:start")
    with pytest.raises(ValueError, match=r"must be 'RANK:raise\|abort:start\|exit', got '1:explode:start'"):
        rank._maybe_fault(0, 1, "start")


def test_torchrun_command_is_the_multi_node_command():
    words = torchrun.torchrun_command(8, "node0.example:29500", nnodes=2, node_rank=1, max_restarts=3)
    assert " ".join(words) == ("torchrun --nnodes 2 --nproc-per-node 8 --node-rank 1 --rdzv-backend c10d "
                               "--rdzv-endpoint node0.example:29500 --max-restarts 3")
    assert torchrun.shell_line(["torchrun", "x"]) == "TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 torchrun x"


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"nproc_per_node": 0}, ValueError, r"nproc_per_node must be an integer in \[1, inf\], got 0"),
    ({"nnodes": 2, "node_rank": 2}, ValueError, r"node_rank must be an integer in \[0, 1\], got 2"),
    ({"max_restarts": -1}, ValueError, "max_restarts must be an integer"),
    ({"endpoint": "node0"}, ValueError, r"must be 'HOST:PORT' such as '127.0.0.1:29500', got 'node0'"),
    ({"endpoint": 29500}, ValueError, "endpoint must be 'HOST:PORT'"),
])
def test_torchrun_command_refuses_bad_options(kwargs, error, match):
    options = {"nproc_per_node": 2, "endpoint": "127.0.0.1:29500", **kwargs}
    with pytest.raises(error, match=match):
        torchrun.torchrun_command(**options)


# ---- what a failure shows -----------------------------------------------------------------------

SUMMARY = """\
torch.distributed.elastic.multiprocessing.errors.ChildFailedError:
Failures:
[1]:
  rank      : 0 (local_rank: 0)
  exitcode  : -15 (pid: 9359)  (SIGTERM)
------------------------------------------------------------
Root Cause (first observed failure):
[0]:
  time      : 2026-12-01_19:52:55
  rank      : 1 (local_rank: 1)
  exitcode  : -6 (pid: 9482)  (SIGABRT)
  error_file: <N/A>
"""

ABORT_LOG = """\
starting
terminate called after throwing an instance of 'gloo::IoException'
  what():  [pair.cc:589] Connection reset by peer
Fatal Python error: Aborted

Current thread 0x00007f828ade7b80 (most recent call first):
  File "/work/main/lora_lab/lab/ddp/rank.py", line 197 in _maybe_fault
Extension modules: numpy._core._multiarray_umath, torch._C (total: 2)
"""


def test_failure_names_the_root_cause_and_the_rank_log(tmp_path):
    (tmp_path / "torchrun.log").write_text(SUMMARY)
    (tmp_path / "rank1.log").write_text(ABORT_LOG)
    who, tail = torchrun.failure(str(tmp_path))
    assert who == "rank 1 (exit code -6, SIGABRT)"  # the root cause, not rank 0 that torchrun stopped
    assert tail == ("\n    rank 1 log: starting"
                    "\n    rank 1 log: terminate called after throwing an instance of 'gloo::IoException'"
                    "\n    rank 1 log: what():  [pair.cc:589] Connection reset by peer"
                    "\n    rank 1 log: Fatal Python error: Aborted")


def test_a_python_traceback_shrinks_to_its_message(tmp_path):
    (tmp_path / "rank0.log").write_text('[rank0]: Traceback (most recent call last):\n'
                                        '[rank0]:   File "x.py", line 1, in main\n'
                                        '[rank0]:     boom()\n[rank0]: ValueError: boom\n')
    assert torchrun.log_tail(str(tmp_path), 0) == "\n    rank 0 log: ValueError: boom"
    assert torchrun.log_tail(str(tmp_path), 1) == ""  # rank 1 wrote no log


def test_failure_without_a_summary_quotes_torchrun(tmp_path):
    (tmp_path / "torchrun.log").write_text("run.py: error: unrecognized arguments: --bad\n")
    assert torchrun.failure(str(tmp_path)) == ("torchrun (run.py: error: unrecognized arguments: --bad)", "")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_processes_running_finds_a_process_by_its_command_line(tmp_path):
    marker = str(tmp_path / "marker")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker])
    try:
        assert torchrun.processes_running(marker) == [child.pid]
    finally:
        child.kill()
        child.wait()
    assert torchrun.processes_running(marker) == []


# ---- where gloo connects ------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(socket, "if_nameindex"), reason="no interface list on this platform")
def test_gloo_is_pinned_to_the_loopback_interface_on_one_machine_only():
    names = [name for _, name in socket.if_nameindex()]
    lo = torchrun.loopback_interface()
    assert lo in names and lo.startswith("lo")
    assert torchrun.gloo_interface("127.0.0.1") == lo and torchrun.gloo_interface("localhost") == lo
    assert torchrun.gloo_interface("10.1.2.3") is None  # another node's address: gloo's own choice
    assert torchrun.gloo_interface("") is None
