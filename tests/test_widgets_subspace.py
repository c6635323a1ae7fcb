"""The subspace picker: its CSS class, and a readout and heatmap that follow the dropdowns."""

import pytest
import torch

pytest.importorskip("ipywidgets")

from lora_lab.lab.models import TinyViT, ViTConfig  # noqa: E402
from lora_lab.lab.readouts import adapter_matrices  # noqa: E402
from lora_lab.lab.runs import Run, RunSpec, prepare  # noqa: E402
from lora_lab.lab.train import History  # noqa: E402
from lora_lab.maths.subspace import phi_readout, subspace_similarity  # noqa: E402
from lora_lab.views.widgets.subspace import picker_phi, subspace_picker  # noqa: E402


@pytest.fixture(scope="module")
def runs():
    torch.manual_seed(0)
    base = TinyViT(ViTConfig(d_model=16, n_blocks=2, n_heads=2, d_ff=32))
    specs = [RunSpec(method="lora", r=r, seed=s) for r in (2, 8) for s in (0, 1)]
    return {(s.r, s.seed): Run(s, prepare(base, s), History()) for s in specs}  # untrained: A is random


def _png(out):
    (item,) = out.outputs
    return item["data"]["image/png"]


def test_picker_phi_is_subspace_similarity_of_the_two_a(runs):
    phi, text = picker_phi(runs, 1, "v_proj", (2, 0), (8, 1))
    A1 = adapter_matrices(runs[2, 0], 1, "v_proj")["A"]
    A2 = adapter_matrices(runs[8, 1], 1, "v_proj")["A"]
    assert A1.shape == (2, 16) and A2.shape == (8, 16)
    assert (phi == subspace_similarity(A1, A2)).all() and text == phi_readout(phi, 16)


def test_picker_updates_readout_and_image(runs):
    box = subspace_picker(runs, layer=1, matrix="q_proj", left=(2, 0), right=(8, 1))
    assert "lora-lab-subspace" in box._dom_classes
    (block, matrix), (a1, a2) = box.children[0].children, box.children[1].children
    readout, out = box.children[2], box.children[3]
    first, image = readout.value, _png(out)
    assert first.startswith("φ(1, 1) = ") and "2×8 grid" in first
    a2.value = (2, 1)
    assert "2×2 grid" in readout.value and _png(out) != image
    second = readout.value
    block.value = 0
    third = readout.value
    assert third != second
    matrix.value = "v_proj"
    assert readout.value != third
    a1.value = (2, 1)
    assert readout.value.startswith("φ(1, 1) = 1.000")  # the same A: full overlap


def test_adapter_matrices_bad_names(runs):
    with pytest.raises(ValueError, match="matrix must be one of"):
        adapter_matrices(runs[2, 0], 0, "k_proj")
    with pytest.raises(ValueError, match=r"layer must be an integer in \[0, 1\]"):
        adapter_matrices(runs[2, 0], 2, "q_proj")
