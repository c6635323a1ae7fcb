"""DDP over gloo on 127.0.0.1, started by torchrun: runs finish, ranks agree, the counted bytes
are the trainable ones, and failures stop everything.

Each launch starts real processes (torchrun, then one process per rank: several seconds each), so
the runs are few and short and shared through module-scoped fixtures. Faults are injected through
the test-only environment variable `rank.FAULT_ENV`.
"""

import socket
import sys
import tempfile

import pytest
import torch

from lora_lab.lab.ddp import launcher as distributed
from lora_lab.lab.ddp.launcher import (
    check_port,
    format_table,
    format_timings,
    free_port,
    launch,
    launch_all,
    max_difference,
    per_step,
)
from lora_lab.lab.ddp.rank import FAULT_ENV
from lora_lab.lab.ddp.torchrun import processes_running
from lora_lab.lab.models import base_model
from lora_lab.lab.runs import RunSpec, prepare

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytest.fixture
def launch_dir(tmp_path, monkeypatch):
    """This test's launches make their output folder under tmp_path, whose path then names their
    processes alone (another launch on this machine, a notebook's say, is not this test's)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert tempfile.gettempdir() == str(tmp_path)  # where TemporaryDirectory makes the launch's folder
    return str(tmp_path)

STEPS = 3
FAST = {"steps": STEPS, "global_batch": 8}


@pytest.fixture(scope="module")
def two_ranks():
    """full and LoRA, two ranks, one launch."""
    full, lora = launch_all(2, ("full", "lora"), **FAST)
    return {"full": full, "lora": lora}


@pytest.fixture(scope="module")
def one_rank_lora():
    return launch(1, "lora", **FAST)


def _trainable(method: str) -> tuple[int, int]:
    model = prepare(base_model(), RunSpec(method=method))
    return (sum(p.numel() for p in model.parameters() if p.requires_grad),
            sum(p.numel() for p in model.parameters()))


@pytest.mark.parametrize("method", ["full", "lora"])
def test_two_ranks_finish_with_identical_trainable_tensors(two_ranks, method):
    res = two_ranks[method]
    assert res.world_size == 2 and len(res.states) == 2 and len(res.bytes_per_step) == STEPS
    assert res.states[0].keys() == res.states[1].keys() and res.states[0]
    for name, tensor in res.states[0].items():
        assert torch.equal(tensor, res.states[1][name]), name
    assert res.identical and res.max_rank_difference == 0.0 and res.gathered_difference == 0.0
    assert 0.0 <= res.accuracy <= 1.0


def test_lora_ranks_hold_only_adapters_and_head(two_ranks):
    names = two_ranks["lora"].states[1].keys()
    assert all("lora_A" in n or "lora_B" in n or n.startswith("head.") for n in names)
    assert any("lora_B" in n for n in names)


def test_training_moved_the_adapters(two_ranks):
    """B starts at zero; after a few DDP steps it is not, on both ranks alike."""
    b = [t for n, t in two_ranks["lora"].states[0].items() if n.endswith("lora_B")]
    assert b and all(t.abs().max() > 0 for t in b)


@pytest.mark.parametrize("method", ["full", "lora"])
def test_bytes_per_step_equal_trainable_parameters_times_element_size(two_ranks, method):
    res = two_ranks[method]
    trainable, total = _trainable(method)
    assert res.trainable == trainable and res.total == total
    assert res.bytes_per_element == 4  # fp32 gradients
    assert res.bytes_per_step == [trainable * 4] * STEPS  # exact: the buckets hold each gradient once
    assert sum(res.buckets) == trainable


def test_full_fine_tuning_sends_every_parameter(two_ranks):
    full = two_ranks["full"]
    assert full.trainable == full.total
    assert per_step(full.bytes_per_step) == 4 * full.total


def test_ratio_is_the_ratio_of_trainable_parameters(two_ranks):
    full, lora = two_ranks["full"], two_ranks["lora"]
    assert per_step(full.bytes_per_step) / per_step(lora.bytes_per_step) == full.trainable / lora.trainable
    table = format_table([full, lora])
    assert f"{per_step(lora.bytes_per_step):,}" in table and "LoRA q,v r=4" in table
    assert f"{full.trainable / lora.trainable:.1f}×" in table and "NO" not in table
    assert "ms/step" in format_timings([full, lora])


def test_one_rank_equals_two_ranks_with_the_same_global_batch(two_ranks, one_rank_lora):
    """DDP averages the ranks' gradients, so 2 × 4 images train like 1 × 8 (up to rounding)."""
    for name, tensor in one_rank_lora.states[0].items():
        torch.testing.assert_close(tensor, two_ranks["lora"].states[0][name], rtol=1e-4, atol=1e-5)
    assert max_difference(one_rank_lora.first_step_state, two_ranks["lora"].first_step_state) < 1e-6
    assert one_rank_lora.bytes_per_step == two_ranks["lora"].bytes_per_step


def test_first_step_state_is_taken_after_one_step(two_ranks):
    """B starts at zero: after one step it has moved, and it differs from the final state."""
    res = two_ranks["lora"]
    assert res.first_step_state.keys() == res.states[0].keys()
    b = "blocks.0.attn.q_proj.lora_B"
    assert res.first_step_state[b].abs().max() > 0
    assert max_difference(res.first_step_state, res.states[0]) > 0


def test_max_difference():
    a, b = {"x": torch.zeros(2)}, {"x": torch.tensor([0.0, -0.5])}
    assert max_difference(a, b) == 0.5 and max_difference(a, a) == 0.0
    with pytest.raises(ValueError, match=r"name different tensors: \['y'\]"):
        max_difference(a, {"x": torch.zeros(2), "y": torch.zeros(1)})


def test_runs_are_deterministic_and_a_crashed_rank_restarts_the_launch(two_ranks, monkeypatch, launch_dir):
    # rank 1 aborts (SIGABRT) in torchrun's first attempt, as a crash in gloo's C++ code would;
    # torchrun starts both ranks again (--max-restarts 1) and the seeds give the same tensors
    monkeypatch.setenv(FAULT_ENV, "1:abort:start")
    res = launch(2, "lora", **FAST)
    assert res.restarts == 1 and res.identical and two_ranks["lora"].restarts == 0
    assert f"{res.accuracy:.3f}" == f"{two_ranks['lora'].accuracy:.3f}"
    assert all(torch.equal(res.states[0][n], t) for n, t in two_ranks["lora"].states[0].items())
    assert processes_running(launch_dir) == []


def test_a_crash_in_the_teardown_keeps_the_saved_results(two_ranks, monkeypatch, launch_dir):
    # rank 1 aborts after the final barrier: every result is on disk, nothing is run again
    monkeypatch.setenv(FAULT_ENV, "1:abort:exit")
    res = launch(2, "lora", max_restarts=0, **FAST)
    assert (res.restarts, res.teardown_crashes) == (0, 1) and res.identical
    assert all(torch.equal(res.states[1][n], t) for n, t in two_ranks["lora"].states[1].items())
    assert two_ranks["lora"].teardown_crashes == 0
    assert processes_running(launch_dir) == []


@linux_only
def test_a_python_error_in_a_rank_is_raised_with_its_log_line(monkeypatch, launch_dir):
    monkeypatch.setenv(FAULT_ENV, "1:raise:start")
    with pytest.raises(RuntimeError, match=r"^rank 1 \(exit code 1\) failed, so torchrun stopped every "
                                           r"rank; no restart left \(max_restarts=0\)") as info:
        launch(2, "lora", steps=1, global_batch=8, max_restarts=0, timeout_s=120)
    why = f"rank 1 log: RuntimeError: rank 1 failed on purpose ({FAULT_ENV}=1:raise:start)"
    assert str(info.value).endswith(why)
    assert processes_running(launch_dir) == []


@linux_only
def test_a_crash_with_no_restart_left_is_an_error_with_the_rank_log(monkeypatch, launch_dir):
    monkeypatch.setenv(FAULT_ENV, "1:abort:start")
    with pytest.raises(RuntimeError, match=r"^rank 1 \(exit code -6, SIGABRT\) failed, so torchrun stopped "
                                           r"every rank; no restart left \(max_restarts=0\)\n") as info:
        launch(2, "lora", steps=1, global_batch=8, max_restarts=0, timeout_s=120)
    assert f"rank 1 log: rank 1 aborts on purpose ({FAULT_ENV}=1:abort:start)" in str(info.value)
    assert processes_running(launch_dir) == []


@linux_only
def test_a_timeout_stops_every_process(launch_dir):
    with pytest.raises(TimeoutError, match=r"within timeout_s=0.5 s; it and its ranks were stopped"):
        launch(2, "lora", steps=1, global_batch=8, timeout_s=0.5)  # not even time to import torch
    assert processes_running(launch_dir) == []


def test_command_line_prints_the_table_and_the_torchrun_command(capsys):
    # fp16 compression on the wire: half the bytes of fp32 (4,741 trainable × 2)
    assert distributed.main(["--world-size", "1", "--steps", "1", "--methods", "lora",
                             "--compress", "fp16"]) == 0
    out = capsys.readouterr().out
    assert "LoRA q,v r=4" in out and f"{4741 * 2:,}" in out and "ms/step" in out
    assert ("torchrun --nnodes 1 --nproc-per-node 1 --node-rank 0 --rdzv-backend c10d "
            "--rdzv-endpoint 127.0.0.1:") in out
    assert "-m lora_lab.lab.ddp.rank --out OUT --methods lora --steps 1" in out and "--compress fp16" in out


# ---- helpers -------------------------------------------------------------------------

def test_per_step_refuses_changing_values():
    assert per_step([8, 8]) == 8
    with pytest.raises(ValueError, match="differ between steps"):
        per_step([8, 4])


# ---- bad input: clear errors, nothing started -----------------------------------------------------

@pytest.mark.parametrize(("world_size", "error", "match"), [
    (0, ValueError, r"world_size must be an integer in \[1, inf\], got 0"),
    (-2, ValueError, "world_size"),
    (1.5, TypeError, "world_size must be an integer"),
])
def test_world_size_below_one_or_not_an_integer(world_size, error, match):
    with pytest.raises(error, match=match):
        launch(world_size)


def test_port_in_use_is_refused_before_starting():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ValueError, match=f"port {port} on 127.0.0.1 is in use"):
            launch(2, port=port)


@pytest.mark.parametrize(("port", "error", "match"), [
    (80, ValueError, r"port must be an integer in \[1024, 65535\], got 80"),
    (70000, ValueError, "port must be"),
    ("29500", TypeError, "port must be an integer"),
])
def test_port_out_of_range(port, error, match):
    with pytest.raises(error, match=match):
        check_port(port)


def test_free_port_can_be_bound():
    assert check_port(free_port()) >= 1024


def test_missing_backend_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(distributed.dist, "is_gloo_available", lambda: False)
    with pytest.raises(RuntimeError, match="gloo backend is not available"):
        launch(2)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "prefix"}, ValueError, r"method must be one of \['full', 'head', 'lora'\], got 'prefix'"),
    ({"steps": 0}, ValueError, "steps must be an integer"),
    ({"global_batch": 9}, ValueError, "global_batch must be a multiple of world_size=2, got 9"),
    ({"global_batch": 1}, ValueError, r"global_batch must be an integer in \[2, inf\]"),
    ({"compress": "int8"}, ValueError, "compress must be one of"),
    ({"max_restarts": -1}, ValueError, r"max_restarts must be an integer"),
    ({"max_restarts": 1.5}, TypeError, r"max_restarts must be an integer"),
    ({"timeout_s": 0}, ValueError, "timeout_s must be a positive"),
])
def test_bad_options(kwargs, error, match):
    with pytest.raises(error, match=match):
        launch(2, **kwargs)


def test_methods_must_not_be_empty():
    with pytest.raises(ValueError, match="methods must name at least one"):
        launch_all(2, ())


def test_fault_injection_is_not_part_of_the_public_signature():
    import inspect

    options = set(inspect.signature(launch_all).parameters)
    assert options == {"world_size", "methods", "steps", "port", "seed", "global_batch", "r", "compress",
                       "timeout_s", "max_restarts"}
    with pytest.raises(TypeError, match="crash_rank"):
        launch(2, crash_rank=1)
