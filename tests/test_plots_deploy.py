"""Figures of 08_deploy_and_switch return (fig, ax) and draw what they are given."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from lora_lab.views.plots.deploy import FIGURES, plot_forward_cost, plot_latency  # noqa: E402

COSTS = {"base": {"ops": 100, "flops": 1000}, "merged": {"ops": 100, "flops": 1000},
         "adapter": {"ops": 120, "flops": 1030}}


def test_forward_cost_labels_ratios_to_the_base():
    fig, axes = plot_forward_cost(COSTS)
    labels = [t.get_text() for t in axes[0].texts]
    assert labels == ["×1.000", "×1.000", "×1.200"]
    assert [t.get_text() for t in axes[1].texts][-1] == "×1.030"
    plt.close(fig)


def test_forward_cost_says_what_it_measured():
    fig, _ = plot_forward_cost(COSTS, setting="LoRA r = 4 on W_q, W_v")
    assert fig._suptitle.get_text().endswith("\n(LoRA r = 4 on W_q, W_v)")
    plt.close(fig)


def test_forward_cost_needs_the_base():
    with pytest.raises(ValueError, match="base must be one of"):
        plot_forward_cost(COSTS, base="nope")


def test_latency_panels():
    ratios = {"merged": {"batch 1": 1.0, "batch 64": 1.01}, "adapter": {"batch 1": 1.3, "batch 64": 1.05}}
    fig, axes = plot_latency(ratios)
    assert len(axes) == 1 and len(axes[0].patches) == 4
    plt.close(fig)
    fig, axes = plot_latency(ratios, paper={"Adapter-L": (2.2, 5.0, 20.7)}, paper_columns=["a", "b", "c"])
    assert len(axes) == 2 and [t.get_text() for t in axes[1].get_xticklabels()] == ["a", "b", "c"]
    assert axes[1].patches[2].get_height() == pytest.approx(1.207)
    plt.close(fig)


def test_registered_figure_draws():
    fig, axes = FIGURES["deploy_forward_cost.png"]()
    labels = [t.get_text() for t in axes[0].texts]
    assert labels[0] == "×1.000" and labels[2] == "×1.000"  # base and merged LoRA
    assert all(float(label[1:]) > 1 for label in labels[3:])  # the adapters add operations
    assert "LoRA r = 4 on W_q, W_v" in fig._suptitle.get_text()  # notebook 08's rank, stated
    plt.close(fig)
