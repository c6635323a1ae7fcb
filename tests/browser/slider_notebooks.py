"""Which notebooks have sliders, the copies the browser test opens, and generated self-check
notebooks (working sliders and broken ones) that prove the checker can fail."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
# a code cell that builds controls: the course's widget package, ipywidgets' interact, a slider or a
# dropdown
SLIDER_SOURCE = re.compile(r"lora_lab\.views\.widgets|\binteract(ive|_manual)?\s*\(|@(\w+\.)?interact\b"
                           r"|\b\w*Slider\s*\(|\bDropdown\s*\(")


def creates_sliders(path: Path) -> bool:
    """Whether any code cell of the notebook at `path` builds sliders (or other controls)."""
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and SLIDER_SOURCE.search(c.source) for c in nb.cells)


def slider_notebooks(folder: Path = NOTEBOOKS) -> list[Path]:
    """The master notebooks (NN_name.ipynb) in `folder` whose code creates sliders."""
    return [p for p in sorted(folder.glob("[0-9][0-9]_*.ipynb")) if creates_sliders(p)]


def copy_without_outputs(src: Path, dst: Path, extra_cells: tuple[str, ...] = ()) -> Path:
    """Copy a notebook with outputs and execution counts cleared (so "[n]:" prompts can only come
    from this run), inserting `extra_cells` (code) after its first code cell."""
    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), -1)
    nb.cells[first_code + 1:first_code + 1] = [nbformat.v4.new_code_cell(s) for s in extra_cells]
    nb.metadata.pop("widgets", None)  # stale saved widget state would render before the kernel runs
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst


# A cell that unwires every slider callback, as if the author forgot `slider.observe(update, ...)`:
# `observe(..., names="value")` becomes a no-op, so the slider still moves but nothing follows it.
UNWIRE_CALLBACKS = '''\
import ipywidgets
def _observe_but_not_values(self, handler, names=None, type="change"):
    if names == "value" or names == ["value"]:
        return None
    return _real_observe(self, handler, names=names, type=type)
_real_observe, ipywidgets.Widget.observe = ipywidgets.Widget.observe, _observe_but_not_values'''

_SELF_CHECK_SETUP = '''\
import base64, io
import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np

def png_of(k):
    """A small PNG that depends on k."""
    fig, ax = plt.subplots(figsize=(3, 2), dpi=60)
    x = np.linspace(0, 2 * np.pi, 100)
    ax.plot(x, np.sin(k * x))
    ax.set_title(f"sin({k}x)")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")'''

# one slider in a `lora-lab-selfcheck` box; {update} is its callback's body, the only thing the
# working and the broken variants differ in (each box is built in a function, so each callback
# sees its own widgets)
_SELF_CHECK_WIDGET = '''\
def make_box():
    slider = W.IntSlider(value=2, min=1, max=9, description="k", continuous_update=False)
    readout, out = W.HTML("k = 2"), W.Output()
    out.outputs = ({{"output_type": "display_data", "metadata": {{}},
                    "data": {{"image/png": png_of(2), "text/plain": "plot"}}}},)

    def update(change=None):
{update}

    slider.observe(update, names="value")
    return W.VBox([slider, readout, out]).add_class("lora-lab-selfcheck")

make_box()'''

CALLBACKS = {
    "working": '''\
        readout.value = f"k = {slider.value}"
        out.outputs = ({"output_type": "display_data", "metadata": {},
                        "data": {"image/png": png_of(slider.value), "text/plain": "plot"}},)''',
    # the readout follows the slider but the plot is never redrawn
    "stale_image": '''\
        readout.value = f"k = {slider.value}"''',
    # the callback raises before it updates anything (an exception in a widget callback is only
    # logged, so the learner sees a slider that does nothing)
    "raises": '''\
        raise KeyError("k")''',
}


# ipywidgets' interact: a slider and a dropdown without a `lora-lab-*` box, a plot by plt.show()
_SELF_CHECK_INTERACT = '''\
@W.interact(n=W.IntSlider(value=3, min=1, max=8, description="bars", continuous_update=False),
            color=["C0", "C1", "C2"])
def bars(n, color):
    plt.figure(figsize=(3, 2), dpi=60)
    plt.bar(range(n), np.arange(1, n + 1), color=color)
    plt.title(f"{n} bars in {color}")
    plt.show()'''


def self_check_notebook(dst: Path, callbacks: tuple[str, ...], interact: bool = False) -> Path:
    """Write a notebook with one slider box per name in `callbacks` (keys of CALLBACKS), in that
    order, then an `interact` slider if asked."""
    cells = [_SELF_CHECK_SETUP] + [_SELF_CHECK_WIDGET.format(update=CALLBACKS[c]) for c in callbacks]
    cells += [_SELF_CHECK_INTERACT] if interact else []
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python",
                                 "name": "python3"}
    dst.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dst)
    return dst
