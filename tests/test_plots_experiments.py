"""The figures of 06 and 07 draw from rows and grids; they return (fig, axes) and never show."""

import re

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
    plt.close(fig)


def test_amplification_draws_the_factor_and_labels_its_log_axis():
    ours = {4: {"proj_delta": 0.5, "proj_W": 3.0, "proj_random": 0.2, "norm_delta": 5.0},
            64: {"proj_delta": 4.0, "proj_W": 7.0, "proj_random": 3.5, "norm_delta": 3.6}}
    fig, axes = ps.plot_amplification(ours)
    factors = [t.get_text() for t in axes[2].texts if re.fullmatch(r"\d+\.\d", t.get_text())]
    assert factors == ["10.0", "0.9", "21.6", "1.9"]  # ours (5/0.5, 3.6/4), then the paper's
    assert [line.get_ydata()[0] for line in axes[2].lines] == [1.0]  # the no-amplification line
    fig.canvas.draw()
    for ax in axes[:2]:
        labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        lo, hi = ax.get_ylim()
        assert len([t for t in ax.get_yticks() if lo <= t <= hi]) >= 3, labels  # more than one tick
    assert r"U^{\top}" in axes[0].get_ylabel()  # mathtext: the glyph "ᵀ" rendered as "'"
    plt.close(fig)


def test_phi_figures_draw_the_panels_they_are_given():
    phi = np.random.default_rng(0).uniform(size=(8, 64))
    fig, axes = ps.figure3({"a": phi, "b": phi, "c": phi})
    assert axes.shape == (3, 1)
    fig, axes = ps.figure4({"a": phi[:4, :4], "b": phi[:4, :4]})
    assert axes.shape == (1, 2) and axes[0, 0].images[0].get_array().shape == (4, 4)
    plt.close("all")


def test_views_hold_no_training_recipes():
    assert not hasattr(pe, "FIGURES") and not hasattr(ps, "FIGURES")
