"""The subspace picker of notebook 07: choose a block, a matrix and two adapters; see φ.

It calls `subspace_similarity` and `phi_readout` (pure, tested), writes the readout to an HTML
widget and a heatmap to an `Output`, so a browser test can see both change.
"""

from __future__ import annotations

import ipywidgets as W

from lora_lab.lab.readouts import adapter_matrices
from lora_lab.maths.subspace import phi_readout, subspace_similarity
from lora_lab.views.widgets.output import show_figure


def _key_label(key: tuple[int, int]) -> str:
    return f"r={key[0]}, seed {key[1]}"


def picker_phi(runs: dict, layer: int, matrix: str, left: tuple, right: tuple):
    """φ between the A matrices of two runs at one block and matrix; and its readout line."""
    A1 = adapter_matrices(runs[left], layer, matrix)["A"]
    A2 = adapter_matrices(runs[right], layer, matrix)["A"]
    phi = subspace_similarity(A1, A2)
    return phi, phi_readout(phi, A1.shape[1])


def subspace_picker(runs: dict, layer: int = 1, matrix: str = "q_proj", left=(8, 0), right=(64, 1)) -> W.VBox:
    """Dropdowns for block, matrix and the two adapters ((r, seed) keys of `runs`); φ heatmap + readout."""
    from lora_lab.views.plots.subspace import plot_phi

    n_blocks = len(next(iter(runs.values())).model.blocks)
    options = [(_key_label(k), k) for k in sorted(runs)]
    block = W.Dropdown(options=list(range(n_blocks)), value=layer, description="block")
    which = W.Dropdown(options=[("Wq", "q_proj"), ("Wv", "v_proj")], value=matrix, description="matrix")
    a1 = W.Dropdown(options=options, value=left, description="A1")
    a2 = W.Dropdown(options=options, value=right, description="A2")
    readout, out = W.HTML(), W.Output()

    def update(change=None) -> None:
        phi, text = picker_phi(runs, block.value, which.value, a1.value, a2.value)
        readout.value = text
        fig, _ = plot_phi(phi, title=f"φ: {_key_label(a1.value)} vs {_key_label(a2.value)}")
        fig.set_size_inches(6, 2.2 if phi.shape[0] < 16 else 4)
        show_figure(out, fig, "φ heatmap")

    for control in (block, which, a1, a2):
        control.observe(update, names="value")
    update()
    box = W.VBox([W.HBox([block, which]), W.HBox([a1, a2]), readout, out])
    box.add_class("lora-lab-subspace")
    return box
