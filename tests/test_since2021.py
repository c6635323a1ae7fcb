"""Notebook 12's measurements, on untrained copies of the base (no training in a unit test):
the scores, the sweep reading, the weight pairs and the intruder surgery."""

import numpy as np
import pytest
import torch

from lora_lab.lab import since2021 as s21
from lora_lab.lab.models import base_model
from lora_lab.lab.runs import LR, Run, prepare
from lora_lab.lab.train import History
from lora_lab.lora.inject import lora_layers


def _untrained(spec):
    """A fake `cached_run`: the spec's model as prepared, before any step."""
    return Run(spec, prepare(base_model(), spec).eval(), History())


def test_a_default_rate_is_stored_as_none_so_cached_runs_are_shared():
    assert s21.spec("lora", LR["lora"], r=4).lr is None
    assert s21.spec("full", 4e-3).lr == 4e-3
    assert len(s21.lr_grid("full", (1e-3, 2e-3), seeds=(0, 1, 2))) == 6
    with pytest.raises(ValueError, match="method must be one of"):
        s21.spec("adapter", 1e-3)


def test_an_untouched_body_remembers_exactly_what_the_base_knew():
    rows = s21.collect([s21.spec("full", 1e-3), s21.spec("lora", 1e-2, r=2)], run_fn=_untrained)
    base = s21.base_source_accuracy()
    assert base > 0.9
    assert [r["source_acc"] for r in rows] == [base, base]  # B = 0 and no step: the body is W0
    assert rows[1]["label"] == "LoRA q,v r=2" and rows[1]["lr"] == LR["lora"]


def _rows(best_by_seed, lrs=(1e-3, 2e-3, 4e-3, 8e-3)):
    return [{"seed": s, "lr": lr, "target_loss": (np.log(lr) - np.log(best)) ** 2}
            for s, best in best_by_seed.items() for lr in lrs]


def test_best_rates_and_their_ratio_per_seed():
    full, lora = _rows({0: 2e-3, 1: 3e-3}), _rows({0: 6e-3, 1: 6e-3}, lrs=(2e-3, 4e-3, 8e-3, 1.6e-2))
    assert np.allclose(list(s21.best_lrs(full).values()), [2e-3, 3e-3])
    assert np.allclose(list(s21.lr_ratios(lora, full).values()), [3.0, 2.0])
    lrs, mean, low, high = s21.mean_curve(full, "target_loss")
    assert lrs.tolist() == [1e-3, 2e-3, 4e-3, 8e-3] and (low <= mean).all() and (mean <= high).all()


def test_placements_have_matched_budgets():
    model = base_model()
    counts = {}
    for name, (targets, r) in s21.PLACEMENTS.items():
        mods = [m for n, m in model.named_modules() if n.split(".")[-1] in targets]
        counts[name] = r * sum(m.in_features + m.out_features for m in mods)
    assert max(counts.values()) / min(counts.values()) < 1.05, counts


def _lora_with_a_big_update(seed=0):
    run = _untrained(s21.spec("lora", 1e-2, r=2, seed=seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(run.model).values():
            layer.lora_B.copy_(3.0 * torch.randn(layer.lora_B.shape, generator=gen))
    return run.model


def test_no_update_no_intruders_a_big_random_update_makes_some():
    assert s21.intruder_count(_untrained(s21.spec("lora", 1e-2, r=2)).model) == 0
    assert s21.intruder_count(_untrained(s21.spec("full", 1e-3)).model) == 0
    assert s21.intruder_count(_lora_with_a_big_update()) > 0


def test_scaling_intruders_moves_the_weights_the_maths_says():
    model = _lora_with_a_big_update()
    same = s21.with_intruders_scaled(model, 1.0)
    assert s21.scores(same) == s21.scores(model)
    removed = s21.with_intruders_scaled(model, 0.0)
    pairs, new = s21.weight_pairs(model), s21.weight_pairs(removed)
    from lora_lab.maths.intruders import scale_intruders
    for name, (W0, W) in pairs.items():
        assert np.allclose(new[name][1], scale_intruders(W0, W, 0.0), atol=1e-5)
    assert s21.intruder_count(removed) < s21.intruder_count(model)


def test_unknown_targets_raise():
    with pytest.raises(ValueError, match="name no linear layer"):
        s21.weight_pairs(base_model(), targets=("nope",))
    with pytest.raises(ValueError, match="name must be one of"):
        s21.best_matches(base_model(), "blocks.7.attn.q_proj")


def test_best_matches_of_an_unchanged_matrix_are_one():
    assert np.allclose(s21.best_matches(base_model(), "blocks.1.attn.q_proj", k=5), 1.0)


def test_the_notebook_sweeps_share_the_default_runs_and_name_their_rules():
    sweeps = s21.sweeps()
    assert len(sweeps["full"]) == len(sweeps["LoRA r=4"]) == 15 and len(sweeps["LoRA r=64"]) == 9
    assert sum(map(len, sweeps.values())) + len(s21.lora_plus_specs()) == 72 + 12  # r=1 to 4e-2
    assert max(s21.RANK_LRS[1]) == 4e-2 and max(s21.LORA_PLUS_LRS) == 1e-2  # each seed's best bracketed
    # every rank's grid holds the default rate, so the intruder cells read the sweeps' runs
    assert all(any(s.lr is None for s in sweeps[f"LoRA r={r}"]) for r in s21.RANKS)
    defaults = [s for s in sweeps["LoRA r=4"] if s.lr is None]
    assert [s.seed for s in defaults] == list(s21.SEEDS)  # the 1e-2 runs are 06's and 10's runs
    assert {s.variant for s in sweeps["rsLoRA r=64"]} == {"rslora"}
    plus = s21.lora_plus_specs()
    assert {s.lora_plus_ratio for s in plus} == {16.0} and "LoRA+ ×16" in plus[0].label()


def test_parameter_counts_and_the_best_rate_rows():
    assert s21.lora_parameters(("q_proj", "v_proj"), 4) == 4 * 4 * (128 + 128)  # 2 blocks × 2 matrices
    assert s21.lora_parameters(("fc1",), 1) == 2 * (128 + 256)
    rows = [{"seed": s, "lr": lr, "target_loss": loss} for s in (0, 1)
            for lr, loss in ((1e-3, 0.5), (2e-3, 0.3 + s), (4e-3, 0.6))]
    assert {r["lr"] for r in s21.at_best_rate(rows)} == {1e-3}  # mean 0.5 < mean 0.8 at 2e-3
    with pytest.raises(ValueError, match="name no linear layer"):
        s21.lora_parameters(("nope",), 2)


# ---- the values kept beside a run (since2021_cache) ---------------------------------------------

@pytest.fixture
def saved_run(tmp_path, monkeypatch):
    """An untrained run written to a temporary runs cache, as `cached_run` would leave it."""
    from lora_lab.lab.runs import save_run

    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    run = _untrained(s21.spec("lora", 1e-2, r=2))
    save_run(run)
    return run


def _counting(calls, value=0.5):
    def compute():
        calls.append(1)
        return {"target_acc": value, "curve": np.arange(3.0)}
    return compute


def test_cached_values_hit_the_second_time(saved_run):
    from lora_lab.lab.since2021_cache import cached_values, values_path

    calls = []
    first = cached_values(saved_run.spec, "scores", _counting(calls))
    again = cached_values(saved_run.spec, "scores", _counting(calls, value=0.9))
    assert calls == [1] and again["target_acc"] == first["target_acc"] == 0.5
    assert np.array_equal(again["curve"], [0.0, 1.0, 2.0])
    assert values_path(saved_run.spec, "scores").name.endswith(".scores.safetensors")


def test_cached_values_miss_when_the_run_file_changes(saved_run):
    from lora_lab.lab.runs import save_run
    from lora_lab.lab.since2021_cache import cached_values

    calls = []
    cached_values(saved_run.spec, "scores", _counting(calls))
    with torch.no_grad():
        next(p for n, p in saved_run.model.named_parameters() if "lora_B" in n).add_(1.0)
    save_run(saved_run)  # retrained: same spec, other tensors
    assert cached_values(saved_run.spec, "scores", _counting(calls, value=0.9))["target_acc"] == 0.9
    assert calls == [1, 1]


def test_a_corrupt_entry_is_a_miss_with_a_warning_and_is_rewritten(saved_run):
    from lora_lab.lab.since2021_cache import cached_values, load_values, values_path

    calls = []
    cached_values(saved_run.spec, "scores", _counting(calls))
    values_path(saved_run.spec, "scores").write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="unreadable cached values"):
        assert cached_values(saved_run.spec, "scores", _counting(calls, value=0.7))["target_acc"] == 0.7
    assert calls == [1, 1] and load_values(saved_run.spec, "scores")["target_acc"] == 0.7


def test_collect_keeps_the_scores_beside_the_run(saved_run, monkeypatch):
    spec = saved_run.spec
    first = s21.collect([spec])  # cached_run reads the saved run; its scores are then stored
    monkeypatch.setattr(s21, "scores", lambda *a, **k: pytest.fail("scores recomputed on a hit"))
    assert s21.collect([spec]) == first and first[0]["source_acc"] == s21.base_source_accuracy()


def test_value_names_are_checked():
    from lora_lab.lab.since2021_cache import cached_values, values_path

    with pytest.raises(ValueError, match="what must be"):
        values_path(s21.spec("lora", 1e-2), "a/b")
    with pytest.raises(TypeError, match="compute must be a callable"):
        cached_values(s21.spec("lora", 1e-2), "scores", 3)
