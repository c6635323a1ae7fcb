"""Figures of 10_variants return (fig, ax) and draw what they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lora_lab.views.plots import variants as pv  # noqa: E402


def test_scaling_lines_are_alpha_over_r_and_over_sqrt_r():
    fig, ax = pv.plot_scaling(alpha=8.0, ranks=(1, 4, 16))
    lora, rs = ax.get_lines()
    assert list(lora.get_ydata()) == [8.0, 2.0, 0.5] and list(rs.get_ydata()) == [8.0, 4.0, 2.0]
    plt.close(fig)


def test_rank_sweep_and_loss_curves():
    fig, ax = pv.plot_rank_sweep({"α/r": {1: 0.8, 4: 0.9}, "α/√r": {1: 0.8, 4: 0.95}})
    assert [list(line.get_ydata()) for line in ax.get_lines()] == [[0.8, 0.9], [0.8, 0.95]]
    plt.close(fig)
    fig, ax = pv.plot_loss_curves({"LoRA": [np.ones(30), np.ones(30)], "DoRA": [np.ones(30)]}, window=10)
    assert len(ax.get_lines()) == 3 and ax.get_lines()[0].get_xdata().size == 21
    plt.close(fig)


def test_pissa_spectrum_marks_the_top_r():
    W = torch.diag(torch.tensor([5.0, 4.0, 3.0, 2.0, 1.0]))
    fig, ax = pv.plot_pissa_spectrum(W, r=2)
    heights = [p.get_height() for p in ax.patches]
    assert heights == pytest.approx([3.0, 2.0, 1.0, 5.0, 4.0])  # residual bars first, then the top 2
    plt.close(fig)


def test_magnitude_direction_nf4_and_counts():
    fig, ax = pv.plot_magnitude_direction({"LoRA": (np.ones(4), np.zeros(4))})
    assert len(ax.collections) == 1
    plt.close(fig)
    fig, ax = pv.plot_nf4_levels(n=640)
    assert len(ax.get_lines()) == 16 + 15
    plt.close(fig)
    fig, ax = pv.plot_counts({"LoRA": 100, "VeRA": 10})
    assert [t.get_text() for t in ax.texts] == [" 100", " 10"]
    plt.close(fig)


@pytest.mark.parametrize("name", sorted(pv.FIGURES))
def test_registered_figures_draw(name):
    fig, ax = pv.FIGURES[name]()
    assert ax.get_title()
    plt.close(fig)
