"""The figures of 06 and 07 draw from rows and grids; they return (fig, axes) and never show."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from lora_lab.lab.train import History  # noqa: E402
from lora_lab.views.plots import experiments as pe  # noqa: E402
from lora_lab.views.plots import subspace as ps  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def _rank_rows(shift=0.0):
    return [{"r": r, "mean": 0.8 + shift, "accuracies": [0.79 + shift, 0.81 + shift], "trainable": 10 * r}
            for r in (1, 2, 4)]


def test_experiment_plots_draw_what_they_are_given():
    h = History(losses=list(np.linspace(2, 0.5, 30)), test_accuracy=[0.6, 0.7, 0.8])
    fig, axes = pe.plot_histories({"a": h, "b": h})
    assert len(axes[1].lines) == 2 and axes[1].lines[0].get_ydata().tolist() == [0.6, 0.7, 0.8]
    fig, ax = pe.plot_rank_ablation(_rank_rows(), _rank_rows(0.05), {"full": 0.9})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    rows = [{"label": f"LoRA {n} r=8", "mean": 0.8, "accuracies": [0.78, 0.82], "trainable": 4741}
            for n in "qkv"]
    fig, ax = pe.plot_weight_types(rows)
    assert len(ax.patches) == 3 and "4,741" in ax.get_title()
    low = [{"method": m, "fraction": f, "accuracy": 0.8, "label": m}
           for m in ("lora", "full") for f in (0.1, 1.0)]
    fig, axes = pe.plot_low_data_and_intrinsic(low, [{"d": 1, "accuracy": 0.7}, {"d": 8, "accuracy": 0.8}])
    assert len(axes[0].lines) == 2


def test_subspace_plots():
    phi = np.random.default_rng(0).uniform(size=(4, 8))
    fig, ax = ps.plot_phi(phi, title="x")
    assert ax.images[0].get_array().shape == (4, 8)
    fig, axes = ps.plot_phi_panels({"a": phi, "b": phi, "c": phi[:2]}, ncols=2)
    assert axes.shape == (2, 2) and not axes[1, 1].axison
    fig, axes = ps.plot_amplification(ps.PAPER_TABLE7)
    assert len(axes[0].patches) == 6 and axes[0].get_yscale() == "log"


def test_figures_are_registered():
    assert set(pe.FIGURES) == {"experiments_methods.png", "experiments_rank.png",
                               "experiments_weight_types.png", "experiments_low_data_intrinsic.png"}
    assert set(ps.FIGURES) == {"subspace_phi_r8_vs_r64.png", "subspace_phi_seed_vs_seed.png",
                               "subspace_amplification.png"}
