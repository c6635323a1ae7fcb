"""The random-subspace experiment: right sizes, seeded, more directions help, bad d rejected;
its runs cache: a hit is the fresh number bit for bit, any changed argument misses, a bad entry
is a miss with a warning. Every test runs in its own temporary LORA_LAB_CACHE."""

import warnings

import pytest
import torch

from lora_lab.lab import intrinsic
from lora_lab.lab.intrinsic import digit_split, intrinsic_curve, mlp, n_params, train_in_subspace


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    """A fresh, empty cache root per test; yields its runs folder."""
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    return tmp_path / "runs"


def test_split_and_mlp_shapes():
    data = digit_split(0)
    (x, y), (xt, _) = data["train"], data["test"]
    assert x.shape == (898, 64) and xt.shape == (899, 64) and 0 <= x.min() and x.max() <= 1
    assert set(y.tolist()) == set(range(10))
    theta = torch.zeros(n_params(16))
    assert n_params(16) == 16 * 64 + 16 + 10 * 16 + 10
    assert mlp(theta, x[:5], 16).shape == (5, 10)


def test_more_directions_reach_higher_accuracy_and_runs_repeat():
    result = intrinsic_curve(ds=(2, 300), hidden=16, measure=False)
    low, high = result["accuracy"]
    assert low < 0.5 < high <= result["full"] + 0.02
    assert result["full"] > 0.9 and result["D"] == n_params(16)
    assert result["d90"] in (300, None) and result["d90"] == result["d90_grid"]
    assert train_in_subspace(300, hidden=16, cache=False) == high  # same seed, same answer


def test_threads_are_restored():
    before = torch.get_num_threads()
    train_in_subspace(2, hidden=4, steps=2)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(("d", "error"), [(0, ValueError), (10**6, ValueError), (2.5, TypeError)])
def test_bad_subspace_dimension(d, error):
    with pytest.raises(error, match="d must be an integer"):
        train_in_subspace(d, hidden=4, steps=1)


def test_curve_plot_marks_d90():
    import matplotlib

    matplotlib.use("Agg")
    from lora_lab.views.plots.intrinsic import plot_intrinsic_curve

    result = {"d": [2, 20, 200], "accuracy": [0.1, 0.5, 0.9], "full": 0.95, "D": 2410, "d90": 200}
    fig, ax = plot_intrinsic_curve(result)
    assert list(ax.lines[0].get_ydata()) == [0.1, 0.5, 0.9]
    assert any("d_int90 = 200" in t.get_text() for t in ax.get_legend().get_texts())
    matplotlib.pyplot.close(fig)


def test_measure_d90_brackets_the_threshold(monkeypatch):
    from lora_lab.lab.intrinsic import measure_d90

    result = measure_d90(hidden=4, start=8, resolution=0.2)
    lo, hi = result["bracket"]
    tried, threshold = result["tried"], result["threshold"]
    assert result["d90"] == hi and result["D"] == n_params(4)
    assert tried[hi] >= threshold and (lo == 0 or tried[lo] < threshold)
    assert hi - lo <= max(1, 0.2 * hi)
    assert threshold == pytest.approx(0.9 * result["full"])
    assert measure_d90(hidden=4, start=8, resolution=0.2, cache=False) == result  # seeded: same answer
    _no_training(monkeypatch)
    assert measure_d90(hidden=4, start=8, resolution=0.2) == result  # every run read from the cache


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"start": 0}, ValueError, "start must be an integer"),
    ({"resolution": 1.5}, ValueError, "resolution must be in"),
    ({"share": 0.0}, ValueError, "share must be in"),
    ({"hidden": 0}, ValueError, "hidden must be an integer"),
])
def test_measure_d90_rejects_bad_arguments(kwargs, error, match):
    from lora_lab.lab.intrinsic import measure_d90

    with pytest.raises(error, match=match):
        measure_d90(**{"hidden": 4, **kwargs})


def test_curve_reports_the_measured_d90_not_the_grid_point():
    from lora_lab.lab.intrinsic import measure_d90

    result = intrinsic_curve(ds=(2, 300), hidden=4)
    found = measure_d90(hidden=4)
    assert result["d90"] == found["d90"] and result["d90_bracket"] == found["bracket"]
    assert result["d90_grid"] in (300, None)


SMALL = {"d": 20, "hidden": 4, "steps": 5, "seed": 0}


def _no_training(monkeypatch):
    """Make any training fail, so that only cache hits can return."""
    def refuse(*args):
        raise AssertionError(f"trained {args} instead of reading the cache")
    monkeypatch.setattr(intrinsic, "_train_in_subspace", refuse)


def _count_training(monkeypatch) -> list:
    calls, real = [], intrinsic._train_in_subspace
    def counted(*args):
        calls.append(args)
        return real(*args)
    monkeypatch.setattr(intrinsic, "_train_in_subspace", counted)
    return calls


def test_a_hit_is_the_fresh_number_bit_for_bit(runs_dir, monkeypatch):
    from safetensors import safe_open

    first = train_in_subspace(**SMALL)
    (entry,) = runs_dir.glob("intrinsic-v*.safetensors")
    with safe_open(str(entry), framework="pt") as f:
        stored = f.get_tensor("accuracy")
    assert stored.dtype == torch.float64 and stored.numel() == 1
    fresh = train_in_subspace(**SMALL, cache=False)
    _no_training(monkeypatch)
    assert train_in_subspace(**SMALL) == first == fresh == float(stored)


@pytest.mark.parametrize("change", [{"d": 21}, {"d": None}, {"hidden": 5}, {"steps": 6}, {"seed": 1}])
def test_a_changed_argument_misses(runs_dir, monkeypatch, change):
    train_in_subspace(**SMALL)
    calls = _count_training(monkeypatch)
    train_in_subspace(**{**SMALL, **change})
    train_in_subspace(**SMALL)  # still a hit
    assert len(calls) == 1 and len(list(runs_dir.glob("intrinsic-v*.safetensors"))) == 2


def test_a_new_version_misses(runs_dir, monkeypatch):
    train_in_subspace(**SMALL)
    calls = _count_training(monkeypatch)
    monkeypatch.setattr(intrinsic, "INTRINSIC_VERSION", intrinsic.INTRINSIC_VERSION + 1)
    train_in_subspace(**SMALL)
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["truncate", "garbage", "other_settings"])
def test_an_unreadable_entry_is_a_miss_with_a_warning_then_rewritten(runs_dir, monkeypatch, damage):
    fresh = train_in_subspace(**SMALL, cache=False)
    path = intrinsic.entry_path(SMALL)
    if damage == "truncate":
        train_in_subspace(**SMALL)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.parent.mkdir(parents=True)
        path.write_bytes(b"not a safetensors file")
    else:
        intrinsic.save_accuracy({**SMALL, "seed": 1}, 0.5)
        intrinsic.entry_path({**SMALL, "seed": 1}).replace(path)
    calls = _count_training(monkeypatch)
    with pytest.warns(UserWarning, match="unreadable cached intrinsic-dimension run") as caught:
        assert train_in_subspace(**SMALL) == fresh
    assert len(caught) == 1 and len(calls) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert train_in_subspace(**SMALL) == fresh  # rewritten: a clean hit
    assert len(calls) == 1


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"cache": 1}, TypeError, "cache must be True or False"),
    ({"steps": 0}, ValueError, "steps must be an integer"),
    ({"seed": -1}, ValueError, "seed must be an integer"),
])
def test_train_in_subspace_rejects_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        train_in_subspace(**{**SMALL, **kwargs})


def test_entry_path_needs_a_dict():
    with pytest.raises(TypeError, match="settings must be a dict"):
        intrinsic.entry_path([("d", 2)])
