"""The random-subspace experiment: right sizes, seeded, more directions help, bad d rejected."""

import pytest
import torch

from lora_lab.lab.intrinsic import digit_split, intrinsic_curve, mlp, n_params, train_in_subspace


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
    assert train_in_subspace(300, hidden=16) == high  # same seed, same answer


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


def test_measure_d90_brackets_the_threshold():
    from lora_lab.lab.intrinsic import measure_d90

    result = measure_d90(hidden=4, start=8, resolution=0.2)
    lo, hi = result["bracket"]
    tried, threshold = result["tried"], result["threshold"]
    assert result["d90"] == hi and result["D"] == n_params(4)
    assert tried[hi] >= threshold and (lo == 0 or tried[lo] < threshold)
    assert hi - lo <= max(1, 0.2 * hi)
    assert threshold == pytest.approx(0.9 * result["full"])
    assert measure_d90(hidden=4, start=8, resolution=0.2)["d90"] == hi  # seeded: same answer


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
