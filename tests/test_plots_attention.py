"""The figures of 04_lora_attention draw what they say and refuse inputs of the wrong shape."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lora_lab.views.plots.attention import FIGURES, plot_attention_heads, plot_fused_delta  # noqa: E402


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_registered_figures_draw(name):
    fig, _ = FIGURES[name]()
    assert fig.axes
    plt.close(fig)


def test_heads_one_panel_per_head():
    fig, axes = plot_attention_heads(torch.softmax(torch.randn(3, 5, 5), -1))
    assert len(axes) == 3 and [ax.get_title() for ax in axes] == ["head 0", "head 1", "head 2"]
    plt.close(fig)


def test_fused_delta_shows_absolute_values_and_bands():
    delta = torch.zeros(6, 4)
    delta[0, 0] = -2.0
    fig, ax = plot_fused_delta(delta)
    shown = np.asarray(ax.images[0].get_array())
    assert shown.shape == (6, 4) and shown[0, 0] == 2.0
    assert [t.get_text().strip() for t in ax.texts] == ["W_q", "W_k", "W_v"]
    plt.close(fig)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"weights must have shape \(n_heads, T, T\), got \(2, 3\)"):
        plot_attention_heads(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"rows divisible by len\(parts\)=3, got \(5, 4\)"):
        plot_fused_delta(np.zeros((5, 4)))
