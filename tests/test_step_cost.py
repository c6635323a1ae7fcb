"""Counted costs of a training step: FLOPs by formula, saved activations, and what freezing removes."""

import pytest
import torch
from torch import nn

from lora_lab.lab.step_cost import saved_activation_bytes, step_flops
from lora_lab.lora.inject import add_lora

N, D = 4, 8


def _mlp(train_first=True, train_second=True):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, D, bias=False), nn.ReLU(), nn.Linear(D, D, bias=False))
    model[0].weight.requires_grad_(train_first)
    model[2].weight.requires_grad_(train_second)
    return model


def test_full_step_is_forward_plus_twice_forward():
    flops = step_flops(_mlp(), torch.randn(N, D))
    assert flops == {"forward": 2 * 2 * N * D * D, "backward": 3 * 2 * N * D * D}


def test_a_frozen_layer_above_still_costs_its_input_gradient():
    top_frozen = step_flops(_mlp(train_second=False), torch.randn(N, D))
    bottom_frozen = step_flops(_mlp(train_first=False), torch.randn(N, D))
    assert top_frozen["backward"] == 2 * 2 * N * D * D  # grad through layer 2, grad W of layer 1
    assert bottom_frozen["backward"] == 1 * 2 * N * D * D  # grad W of layer 2 only


def test_lora_backward_is_more_than_half_the_full_one():
    x = torch.randn(N, D)
    full = step_flops(_mlp(), x)
    lora = step_flops(add_lora(_mlp(), ["0", "2"], r=2), x)
    assert lora["forward"] > full["forward"]  # the low-rank path is extra work
    assert full["backward"] / 2 < lora["backward"] < full["backward"]


def test_a_frozen_linear_keeps_no_input_a_trained_one_does():
    x = torch.randn(N, D, requires_grad=True)  # a gradient flows back through the layer either way
    frozen = nn.Linear(D, D, bias=False).requires_grad_(False)
    trained = nn.Linear(D, D, bias=False)
    out = N * D * 4  # float32 output, kept by the loss's square
    assert saved_activation_bytes(frozen, x) == out  # x Wᵀ's input gradient needs W only
    assert saved_activation_bytes(trained, x) == out + N * D * 4  # its weight gradient needs x


def test_lora_on_every_layer_keeps_the_inputs_again():
    x = torch.randn(N, D)
    full = saved_activation_bytes(_mlp(), x)
    frozen = saved_activation_bytes(_mlp(False, False), x)
    lora = saved_activation_bytes(add_lora(_mlp(), ["0", "2"], r=2), x)
    assert frozen == 0 < full <= lora  # A's weight gradient needs each layer's input, as W's did


def test_step_flops_leaves_no_gradients():
    model = _mlp()
    step_flops(model, torch.randn(N, D))
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(("call", "match"), [
    (lambda: step_flops("model", torch.zeros(1)), "model must be an nn.Module, got str"),
    (lambda: saved_activation_bytes(nn.Linear(2, 2), [1.0, 2.0]), "x must be a torch.Tensor, got list"),
])
def test_bad_arguments_raise(call, match):
    with pytest.raises(TypeError, match=match):
        call()
