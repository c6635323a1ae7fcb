"""DDP over gloo on 127.0.0.1: runs finish, ranks agree, the counted bytes are the trainable ones.

Each launch starts real processes (a few seconds each), so the runs are few and short and shared
through module-scoped fixtures.
"""

import multiprocessing
import socket

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
from lora_lab.lab.models import base_model
from lora_lab.lab.runs import RunSpec, prepare

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


def test_fp16_compression_halves_the_bytes(one_rank_lora):
    res = launch(1, "lora", compress="fp16", steps=2, global_batch=8)
    assert res.bytes_per_element == 2
    assert res.bytes_per_step == [2 * one_rank_lora.trainable] * 2


def test_runs_are_deterministic(two_ranks):
    again = launch(2, "lora", **FAST)
    first = two_ranks["lora"]
    assert f"{again.accuracy:.3f}" == f"{first.accuracy:.3f}"
    assert all(torch.equal(again.states[0][n], t) for n, t in first.states[0].items())


def test_a_failing_rank_stops_every_process():
    # rank 1 raises; rank 0 then waits in DDP's first broadcast (or sees the peer close, a race:
    # either rank may be reported first)
    with pytest.raises(RuntimeError, match=r"rank [01] failed, so every rank was stopped: "):
        launch(2, "lora", steps=1, global_batch=8, fail_rank=1, timeout_s=120)
    assert multiprocessing.active_children() == []


def test_a_crashed_rank_restarts_the_launch_with_the_same_result(two_ranks):
    # rank 1 aborts (SIGABRT) in the first attempt, as a crash in gloo's C++ code would
    res = launch(2, "lora", crash_rank=1, **FAST)
    assert res.restarts == 1 and res.identical
    assert all(torch.equal(res.states[0][n], t) for n, t in two_ranks["lora"].states[0].items())
    assert two_ranks["lora"].restarts == 0
    assert multiprocessing.active_children() == []


def test_a_crash_in_the_teardown_keeps_the_saved_results(two_ranks):
    # rank 1 aborts after the final barrier: every result is on disk, nothing is run again
    res = launch(2, "lora", crash_rank=1, crash_at="exit", max_restarts=0, **FAST)
    assert (res.restarts, res.teardown_crashes) == (0, 1) and res.identical
    assert all(torch.equal(res.states[1][n], t) for n, t in two_ranks["lora"].states[1].items())
    assert two_ranks["lora"].teardown_crashes == 0
    assert multiprocessing.active_children() == []


def test_a_crash_with_no_restart_left_is_an_error_with_the_rank_log():
    with pytest.raises(RuntimeError, match=r"rank 1 failed, so every rank was stopped: process 1 terminated "
                                           r"with signal SIGABRT\n    rank 1 log: ") as info:
        launch(2, "lora", steps=1, global_batch=8, crash_rank=1, max_restarts=0, timeout_s=120)
    assert str(info.value).endswith("rank 1 log: rank 1 aborts on purpose (crash_rank=1, crash_at='start') "
                                    "(after 0 restarts; max_restarts=0)")
    assert multiprocessing.active_children() == []


def test_a_timeout_stops_every_process():
    with pytest.raises(TimeoutError, match=r"did not finish within timeout_s=0.5 s; they were stopped"):
        launch(2, "lora", steps=1, global_batch=8, timeout_s=0.5)  # not even time to import torch
    assert multiprocessing.active_children() == []


def test_command_line_prints_the_table(capsys):
    assert distributed.main(["--world-size", "1", "--steps", "1", "--methods", "lora"]) == 0
    out = capsys.readouterr().out
    assert "LoRA q,v r=4" in out and "18,964" in out and "ms/step" in out


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
    assert multiprocessing.active_children() == []


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
    ({"fail_rank": 2}, ValueError, r"fail_rank must be an integer in \[0, 1\]"),
    ({"crash_rank": -1}, ValueError, r"crash_rank must be an integer in \[0, 1\]"),
    ({"crash_at": "middle"}, ValueError, r"crash_at must be one of"),
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


# ---- what a failure shows, and where gloo connects -------------------------------------

def test_a_rank_log_tail_goes_into_the_error(tmp_path):
    # a rank killed by a C++ abort leaves no Python traceback; its log's last lines are the cause
    (tmp_path / "rank1.log").write_text("starting\n\nterminate called after throwing 'gloo::IoException'\n")
    tail = distributed._log_tail(str(tmp_path), 1)
    assert tail == ("\n    rank 1 log: starting"
                    "\n    rank 1 log: terminate called after throwing 'gloo::IoException'")
    assert distributed._log_tail(str(tmp_path), 0) == ""  # rank 0 wrote no log


@pytest.mark.skipif(not hasattr(socket, "if_nameindex"), reason="no interface list on this platform")
def test_gloo_is_pinned_to_the_loopback_interface():
    from lora_lab.lab.ddp.rank import loopback_interface

    names = [name for _, name in socket.if_nameindex()]
    assert loopback_interface() in names and loopback_interface().startswith("lo")
