"""The DDP launch cache: a launch runs once, then comes back field for field and tensor for tensor;
the key follows what the results depend on; a corrupt entry is a miss. `launch_all` is replaced by
a recorder here (the real launches are tests/test_distributed.py's)."""

from __future__ import annotations

import warnings

import pytest
import torch

from lora_lab.lab.ddp import cache
from lora_lab.lab.ddp.launcher import DistResult
from lora_lab.lab.ddp.rank import FAULT_ENV


def fake_result(method: str, world_size: int, steps: int) -> DistResult:
    gen = torch.Generator().manual_seed(steps)
    state = {"head.weight": torch.randn(5, 3, generator=gen),
             "blocks.0.attn.q.lora_A": torch.randn(4, 3, generator=gen)}
    return DistResult(method, 4, world_size, steps, 47, 900, 4, [188] * steps, [47],
                      [0.01 * (i + 1) for i in range(steps)], 0.8125,
                      [dict(state) for _ in range(world_size)], {k: v / 2 for k, v in state.items()},
                      0.0, 1, 0, "torchrun --nproc-per-node 2 ... --out OUT")


@pytest.fixture
def launches(tmp_path, monkeypatch):
    """Each launch_all call the cache makes, recorded; the cache in tmp_path."""
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    monkeypatch.delenv(FAULT_ENV, raising=False)
    calls = []

    def fake_launch_all(world_size, methods, steps, **options):
        calls.append((world_size, tuple(methods), steps, options))
        return [fake_result(m, world_size, steps) for m in methods]

    monkeypatch.setattr(cache, "launch_all", fake_launch_all)
    return calls


def same(a: DistResult, b: DistResult) -> bool:
    plain = [f for f in a.__dataclass_fields__ if f not in ("states", "first_step_state")]
    return (all(getattr(a, f) == getattr(b, f) for f in plain) and len(a.states) == len(b.states)
            and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                    for x, y in zip(a.states, b.states, strict=True))
            and a.first_step_state.keys() == b.first_step_state.keys()
            and all(torch.equal(a.first_step_state[k], b.first_step_state[k]) for k in a.first_step_state))


def test_a_launch_runs_once_then_comes_back_exactly(launches):
    first = cache.cached_launch_all(2, ("full", "lora"), steps=3, port=29999)
    again = cache.cached_launch_all(2, ("full", "lora"), steps=3, port=30001, timeout_s=9.0)
    assert len(launches) == 1 and launches[0][3]["port"] == 29999
    assert [r.method for r in again] == ["full", "lora"]
    assert all(same(a, b) for a, b in zip(first, again, strict=True))
    assert cache.launch_path(world_size=2, methods=("full", "lora"), steps=3).exists()


def test_one_method_through_cached_launch(launches):
    one = cache.cached_launch(1, "lora", steps=2)
    assert same(one, cache.cached_launch(1, "lora", steps=2)) and len(launches) == 1 and one.world_size == 1


@pytest.mark.parametrize("change", [{"steps": 4}, {"seed": 1}, {"global_batch": 16}, {"r": 8},
                                    {"compress": "fp16"}, {"world_size": 1}, {"methods": ("lora",)}])
def test_the_key_changes_with_what_the_results_depend_on(launches, change):
    base = {"world_size": 2, "methods": ("full", "lora"), "steps": 3}
    assert cache.launch_key(**base) != cache.launch_key(**{**base, **change})


def test_the_key_follows_the_code_version(launches, monkeypatch):
    before = cache.launch_key()
    monkeypatch.setattr(cache, "DDP_RUNS_VERSION", cache.DDP_RUNS_VERSION + 1)
    assert cache.launch_key() != before


def test_a_corrupt_entry_is_a_miss_with_a_warning_and_is_rewritten(launches):
    cache.cached_launch_all(2, ("lora",), steps=3)
    path = cache.launch_path(world_size=2, methods=("lora",), steps=3)
    path.write_bytes(path.read_bytes()[:40])
    with pytest.warns(UserWarning, match=r"unreadable cached DDP launch ddp-v1-[0-9a-f]{16}\.safetensors"):
        cache.cached_launch_all(2, ("lora",), steps=3)
    assert len(launches) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache.cached_launch_all(2, ("lora",), steps=3)  # the rewritten entry reads back
    assert len(launches) == 2


def test_with_a_fault_injected_it_always_launches_and_keeps_nothing(launches, monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "1:abort:start")
    cache.cached_launch_all(2, ("lora",), steps=3)
    cache.cached_launch_all(2, ("lora",), steps=3)
    assert len(launches) == 2 and not cache.launch_path(world_size=2, methods=("lora",), steps=3).exists()


@pytest.mark.parametrize(("bad", "match"), [
    ({"world_size": 0}, r"world_size must be an integer in \[1, inf\], got 0"),
    ({"methods": ()}, r"methods must name at least one of"),
    ({"compress": "int8"}, r"compress must be one of")])
def test_bad_settings_are_refused_before_anything_runs(launches, bad, match):
    with pytest.raises(ValueError, match=match):
        cache.cached_launch_all(**{"world_size": 2, **bad})
    assert launches == []
