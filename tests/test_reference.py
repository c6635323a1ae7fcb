"""The PEFT and loralib twins hold the same weights and compute the same numbers as LoRALinear."""

import sys

import pytest
import torch
from torch import nn

from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.peft import loralib_twin, max_difference, outputs_and_grads, peft_twin


def layer(dropout=0.0, rslora=False, bias=True):
    torch.manual_seed(0)
    lay = LoRALinear(nn.Linear(16, 8, bias=bias), r=4, alpha=6.0, dropout=dropout, rslora=rslora)
    with torch.no_grad():
        lay.lora_B.normal_(std=0.1)
    return lay


@pytest.mark.parametrize("make", [peft_twin, loralib_twin], ids=["peft", "loralib"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("bias", [True, False])
def test_twins_agree(make, dropout, bias):
    lay = layer(dropout, bias=bias)
    twin = make(lay)
    x = torch.randn(3, 5, 16)
    assert max_difference(lay, twin, x) <= 1e-6
    lay.eval()
    assert max_difference(lay, make(lay), x) <= 1e-6


def test_peft_twin_rslora():
    lay = layer(rslora=True)
    assert max_difference(lay, peft_twin(lay), torch.randn(4, 16)) <= 1e-6


def test_a_different_layer_differs():
    lay, other = layer(), layer()
    with torch.no_grad():
        other.lora_B.add_(0.1)
    assert max_difference(lay, peft_twin(other), torch.randn(4, 16)) > 1e-3


def test_outputs_and_grads_shapes():
    out, gx, gA, gB = outputs_and_grads(layer(), torch.randn(2, 3, 16))
    assert out.shape == (2, 3, 8) and gx.shape == (2, 3, 16) and gA.shape == (4, 16) and gB.shape == (8, 4)


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: peft_twin(nn.Linear(3, 3)), TypeError, "layer must be a LoRALinear, got Linear"),
    (lambda: loralib_twin(layer(rslora=True)), ValueError, "loralib has no α/√r scaling"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_merged_layer_refused():
    lay = layer()
    lay.merge()
    with pytest.raises(ValueError, match="layer is merged; call layer.unmerge"):
        peft_twin(lay)


def test_missing_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "loralib", None)
    with pytest.raises(ImportError, match=r"loralib is not installed: `pip install peft loralib`"):
        loralib_twin(layer())
