"""What the course's widgets put into an `ipywidgets.Output`: one image, set as the widget's state.

A widget's callback never captures into an Output (`with out: display(fig)`). Captured output is
routed by the kernel's message ids, and nbclient (which nbgrader and `scripts/build_notebook.py`
execute notebooks with) imitates a browser for it by sending comm messages back to the kernel on
the shell channel while the cell runs. Under `nbgrader autograde` on a busy machine that stalled
notebook 05's calculator cell until nbgrader's per-cell timeout. Setting `out.outputs` sends one
state update from the kernel, the same in JupyterLab, in nbclient and in plain Python.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as W
import matplotlib.pyplot as plt


def show_image(out: W.Output, data: bytes, mime: str, alt: str) -> None:
    """Replace what `out` shows by one image: `data` encoded as `mime`, `alt` its text form."""
    bundle = {mime: base64.b64encode(data).decode("ascii"), "text/plain": alt}
    out.outputs = ({"output_type": "display_data", "data": bundle, "metadata": {}},)


def fig_png(fig, dpi: int = 72) -> bytes:
    """`fig` as PNG bytes, cropped to what it draws; the figure is closed."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def show_figure(out: W.Output, fig, alt: str) -> None:
    """Replace what `out` shows by `fig` as a PNG; the figure is closed."""
    show_image(out, fig_png(fig), "image/png", alt)
