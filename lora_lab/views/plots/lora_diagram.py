"""Figure 1 of the paper, drawn by code: the frozen W0 beside the trained A → B path.

The input x enters at the bottom, the frozen W0 (d_out × d_in) on the left, the low-rank path on
the right: A (r × d_in) narrows x to r numbers, B (d_out × r) widens them back; the two meet in
h = W0 x + (α/r) B A x at the top. The shapes written on it come from the arguments.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Polygon, Rectangle

from lora_lab._checks import check_int, check_positive, check_rank

FROZEN, TRAINED = "#9ecae1", "#fdae6b"  # blue: pretrained and frozen; orange: trained (as the paper)


def _arrow(ax, start, end) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, lw=1.2, color="0.25"))


def _trapezoid(ax, y0: float, y1: float, w0: float, w1: float, x_mid: float = 7.0) -> None:
    """A trapezoid centred on x_mid, width w0 at height y0 and w1 at y1 (the paper's A and B)."""
    corners = [(x_mid - w0 / 2, y0), (x_mid + w0 / 2, y0), (x_mid + w1 / 2, y1), (x_mid - w1 / 2, y1)]
    ax.add_patch(Polygon(corners, closed=True, fc=TRAINED, ec="0.2", lw=1.2))


def _frozen_side(ax, d_in: int, d_out: int) -> None:
    ax.add_patch(Rectangle((0.6, 2.6), 3.8, 3.8, fc=FROZEN, ec="0.2", lw=1.2))
    ax.text(2.5, 4.9, "$W_0$", ha="center", va="center", fontsize=18)
    ax.text(2.5, 4.05, f"d_out × d_in = {d_out:,} × {d_in:,}", ha="center", fontsize=9)
    ax.text(2.5, 3.3, "pretrained · frozen", ha="center", fontsize=9, style="italic")


def _trained_side(ax, d_in: int, d_out: int, r: int) -> None:
    _trapezoid(ax, 2.6, 4.1, 3.8, 0.5)  # A: d_in numbers in, r out
    _trapezoid(ax, 4.9, 6.4, 0.5, 3.8)  # B: r numbers in, d_out out
    ax.text(7.0, 3.2, f"$A$  ({r} × {d_in:,})", ha="center", fontsize=11)
    ax.text(7.0, 5.85, f"$B$  ({d_out:,} × {r})", ha="center", fontsize=11)
    ax.text(9.1, 3.2, "random\n(Kaiming uniform)", ha="left", va="center", fontsize=8)
    ax.text(9.1, 5.75, "B = 0 at the start", ha="left", va="center", fontsize=8, weight="bold")
    ax.text(7.45, 4.5, f"r = {r}", ha="left", va="center", fontsize=9)
    ax.text(8.6, 4.5, "trained", ha="left", va="center", fontsize=9, style="italic", color="#a63603")
    _arrow(ax, (7.0, 4.1), (7.0, 4.9))


def plot_lora_diagram(d_in: int = 1024, d_out: int = 1024, r: int = 4, alpha: float = 8.0):
    """LoRA's Figure 1: x → frozen W0 and x → A → B, summed into h = W0 x + (α/r) B A x.

    Shapes: W0 (d_out, d_in), A (r, d_in), B (d_out, r), as `nn.Linear` stores a weight.
    """
    d_in, d_out = check_int("d_in", d_in, 1), check_int("d_out", d_out, 1)
    r, alpha = check_rank(r, d_in, d_out), check_positive("alpha", alpha)
    fig, ax = plt.subplots(figsize=(7.6, 5.2))
    _frozen_side(ax, d_in, d_out)
    _trained_side(ax, d_in, d_out, r)
    ax.text(4.75, 0.55, f"$x$  (d_in = {d_in:,})", ha="center", fontsize=12)
    for target in [(2.5, 2.6), (7.0, 2.6)]:
        _arrow(ax, (4.75, 1.0), target)
    ax.text(4.75, 8.75, f"$h = W_0 x + \\frac{{\\alpha}}{{r}} B A x$  (d_out = {d_out:,})",
            ha="center", fontsize=12)
    ax.text(4.75, 7.55, "+", ha="center", va="center", fontsize=16,
            bbox={"boxstyle": "circle", "fc": "white", "ec": "0.2"})
    _arrow(ax, (2.5, 6.4), (4.4, 7.4))
    _arrow(ax, (7.0, 6.4), (5.1, 7.4))
    _arrow(ax, (4.75, 7.95), (4.75, 8.5))
    ax.text(6.05, 6.95, f"× α/r = {alpha:g}/{r} = {alpha / r:g}", ha="left", fontsize=9)
    ax.set(xlim=(0.3, 11.2), ylim=(0.2, 9.3), aspect="equal")
    ax.axis("off")
    fig.tight_layout()
    return fig, ax


#: ready for `make figures` once `lora_lab.course.figures.VIEWS` lists this module
FIGURES = {"lora_figure1.png": plot_lora_diagram}  # the notes' layer: d_in = d_out = 1024, r = 4, α = 8
