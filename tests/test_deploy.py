"""Serving costs: merged LoRA runs the base's exact graph; unmerged LoRA and adapters add operations."""

import copy

import pytest
import torch
from torch import nn

from lora_lab.lora.attention import TransformerBlock
from lora_lab.lora.deploy import (
    BottleneckAdapter,
    add_bottleneck_adapters,
    count_ops,
    forward_flops,
    serving_costs,
    serving_variants,
    time_forward,
)
from lora_lab.lora.inject import add_lora, count_parameters, lora_layers, merge_lora

D = 16


@pytest.fixture
def base():
    torch.manual_seed(0)
    return nn.Sequential(TransformerBlock(D, 2, 2 * D), TransformerBlock(D, 2, 2 * D)).eval()


@pytest.fixture
def x():
    return torch.randn(2, 5, D, generator=torch.Generator().manual_seed(1))


def test_merged_lora_has_the_base_graph_and_flops(base, x):
    lora = add_lora(copy.deepcopy(base), ["q_proj", "v_proj"], r=4).eval()
    merged = merge_lora(copy.deepcopy(lora))
    assert count_ops(merged, x) == count_ops(base, x) < count_ops(lora, x)
    assert forward_flops(merged, x) == forward_flops(base, x)


def test_unmerged_lora_flops_are_the_low_rank_products(base, x):
    """Per adapted layer and token: x A^T (r·d_in) then (x A^T) B^T (d_out·r), 2 FLOPs per multiply-add."""
    r, layers, tokens = 4, 4, x.shape[0] * x.shape[1]
    lora = add_lora(copy.deepcopy(base), ["q_proj", "v_proj"], r=r).eval()
    extra = forward_flops(lora, x) - forward_flops(base, x)
    assert extra == layers * tokens * 2 * (r * D + D * r)


def test_bottleneck_adapter_starts_as_identity_and_adds_its_products(base, x):
    b = 3
    adapted = add_bottleneck_adapters(copy.deepcopy(base), ["attn", "mlp"], bottleneck=b).eval()
    assert torch.equal(adapted(x), base(x))
    tokens, n_adapters = x.shape[0] * x.shape[1], 4
    assert forward_flops(adapted, x) - forward_flops(base, x) == n_adapters * tokens * 2 * (2 * D * b)
    assert count_ops(adapted, x) > count_ops(base, x)
    trainable, _ = count_parameters(adapted)
    assert trainable == n_adapters * (2 * D * b + b + D)


def test_adapter_l_layout_wraps_only_the_mlp(base):
    adapted = add_bottleneck_adapters(copy.deepcopy(base), "mlp", bottleneck=2)
    assert isinstance(adapted[0].mlp, BottleneckAdapter)
    assert not isinstance(adapted[0].attn, BottleneckAdapter)


def test_time_forward_returns_a_positive_time_per_model(base, x):
    times = time_forward({"a": base, "b": base}, x, repeats=3, warmup=1)
    assert set(times) == {"a", "b"} and all(t > 0 for t in times.values())


def test_bad_inputs(base, x):
    with pytest.raises(ValueError, match=r"targets \['nope'\] match no module"):
        add_bottleneck_adapters(base, ["nope"])
    with pytest.raises(ValueError, match="bottleneck must be an integer in \\[1, 16\\], got 17"):
        add_bottleneck_adapters(copy.deepcopy(base), ["mlp"], bottleneck=17)
    untouched = copy.deepcopy(base)
    with pytest.raises(ValueError, match="target '0.ln1' holds no nn.Linear"):
        add_bottleneck_adapters(untouched, ["mlp", "ln1"])
    assert not isinstance(untouched[0].mlp, BottleneckAdapter)
    assert all(p.requires_grad for p in untouched.parameters())
    with pytest.raises(TypeError, match="model must be an nn.Module, got int"):
        add_bottleneck_adapters(3, ["mlp"])
    with pytest.raises(ValueError, match="repeats must be an integer in \\[1, inf\\], got 0"):
        time_forward({"a": base}, x, repeats=0)
    with pytest.raises(ValueError, match="models must name at least one model"):
        time_forward({}, x)


def test_serving_costs_rows(base, x):
    costs = serving_costs({"base": base}, x)
    assert costs["base"] == {"ops": count_ops(base, x), "flops": forward_flops(base, x),
                             "params": sum(p.numel() for p in base.parameters())}
    with pytest.raises(ValueError, match="models must name at least one model"):
        serving_costs({}, x)


def test_serving_variants_leave_base_and_lora_unchanged(base, x):
    lora = add_lora(copy.deepcopy(base), ["q_proj"], r=2)
    before = lora(x)
    models = serving_variants(base, lora, bottleneck=2)
    assert list(models) == ["base", "LoRA, unmerged", "LoRA, merged", "Adapter-L (mlp)",
                            "Adapter-H (attn, mlp)"]
    assert models["base"] is base and models["LoRA, unmerged"] is lora
    assert not any(layer.merged for layer in lora_layers(lora).values())
    assert torch.equal(models["LoRA, unmerged"](x), before)
    torch.testing.assert_close(models["LoRA, merged"](x), before, rtol=1e-5, atol=1e-6)
    assert not any(isinstance(m, BottleneckAdapter) for m in base.modules())
