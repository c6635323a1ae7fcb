"""Figures of 12_since_2021 return (fig, ax) and draw what they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lora_lab.views.plots import since2021 as p12  # noqa: E402


def test_lr_sweeps_draw_one_line_per_method_and_the_best_rates():
    lrs = np.array([1e-3, 2e-3, 4e-3])
    curves = {"full": (lrs, [3, 2, 3], [2, 1, 2], [4, 3, 4]),
              "LoRA": (lrs * 5, [2, 1, 2], [1, 0, 1], [3, 2, 3])}
    fig, ax = p12.plot_lr_sweeps(curves, best={"full": 2e-3})
    lines = ax.get_lines()
    assert [list(line.get_ydata()) for line in lines[:1]] == [[3, 2, 3]]
    assert len(lines) == 3 and list(lines[1].get_xdata()) == [2e-3, 2e-3]  # full, its best, LoRA
    assert ax.get_xscale() == "log"
    plt.close(fig)


def test_learning_forgetting_plots_the_drop_from_the_base():
    rows = [{"target_acc": 0.9, "source_acc": 0.7}, {"target_acc": 0.8, "source_acc": 0.95}]
    fig, ax = p12.plot_learning_forgetting({"full": rows[:1], "LoRA": rows[1:]}, base_source=0.95)
    offsets = [c.get_offsets()[0].tolist() for c in ax.collections]
    assert np.allclose(offsets, [[0.9, 0.25], [0.8, 0.0]])
    plt.close(fig)


def test_placements_best_match_and_rank_lr():
    fig, ax = p12.plot_placements({"attention": [0.9, 0.92], "MLP": [0.8, 0.82]},
                                  trainable={"attention": 100, "MLP": 96})
    assert [round(b.get_height(), 2) for b in ax.patches] == [0.91, 0.81]
    assert ax.get_xticklabels()[0].get_text().startswith("attention")
    plt.close(fig)
    fig, ax = p12.plot_best_match({"LoRA": [0.2, 0.9], "full": [0.95, 0.99]}, threshold=0.5)
    lines = ax.get_lines()
    assert list(lines[0].get_ydata()) == [0.2, 0.9] and list(lines[2].get_ydata()) == [0.5, 0.5]
    plt.close(fig)
    fig, ax = p12.plot_rank_lr({"α/r": {1: [1e-2, 1e-2], 4: [4e-2, 1e-2]}})
    assert np.allclose(ax.get_lines()[-1].get_ydata(), [1e-2, 2e-2])
    plt.close(fig)


def test_epoch_curves_draw_the_mean_over_seeds():
    fig, ax = p12.plot_epoch_curves({"LoRA": [[0.5, 0.7], [0.7, 0.9]], "LoRA+": [[0.8, 0.9], [0.8, 0.9]]})
    assert np.allclose(ax.get_lines()[0].get_ydata(), [0.6, 0.8]) and len(ax.get_lines()) == 2
    plt.close(fig)
