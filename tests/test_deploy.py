"""Serving costs: merged LoRA runs the base's exact graph; unmerged LoRA and adapters add operations."""

import copy

import pytest
import torch
from torch import nn

import lora_lab.lora.deploy as deploy_module
from lora_lab.lora.attention import TransformerBlock
from lora_lab.lora.deploy import (
    MERGED_BAND,
    BottleneckAdapter,
    TimingCheck,
    add_bottleneck_adapters,
    count_ops,
    forward_flops,
    merged_check,
    serving_costs,
    serving_variants,
    time_ratios,
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


class Clock:
    """A fake perf_counter: models advance it by a set cost, times a load factor per call."""

    def __init__(self):
        self.now, self.calls, self.load = 0.0, 0, {}

    def __call__(self):
        return self.now

    def spend(self, cost):
        self.calls += 1
        self.now += cost * self.load.get(self.calls, 1.0)


class Costs(nn.Module):
    def __init__(self, clock, cost):
        super().__init__()
        self.clock, self.cost = clock, cost

    def forward(self, x):
        self.clock.spend(self.cost)
        return x


def test_time_ratios_are_paired_medians_that_shrug_off_bursts(monkeypatch, x):
    clock = Clock()
    monkeypatch.setattr(deploy_module.time, "perf_counter", clock)
    models = {"base": Costs(clock, 1.0), "merged": Costs(clock, 1.0), "slow": Costs(clock, 1.5)}
    warmup, rounds = 2, 21
    first = warmup * 3
    clock.load = {first + k: 50.0 for k in range(1, 4 * 3, 3)}  # a burst hits one model in 4 rounds
    clock.load |= {first + 3 * 10 + k: 8.0 for k in (1, 2, 3)}  # a burst hits a whole round alike
    ratios = time_ratios(models, x, rounds=rounds, warmup=warmup)
    assert ratios == {"base": 1.0, "merged": 1.0, "slow": 1.5}
    assert clock.calls == (warmup + rounds) * 3


def test_time_ratios_on_real_models(base, x):
    ratios = time_ratios({"base": base, "same": base}, x, rounds=3, warmup=1)
    assert ratios["base"] == 1.0 and ratios["same"] > 0


def test_merged_check_passes_inside_the_band_and_explains_outside():
    good = {"batch 32": {"LoRA, merged": 1.02}, "batch 1": {"LoRA, merged": 0.97}}
    check = merged_check(good)
    assert check == TimingCheck(True, check.message)
    assert "×1.02 at batch 32, ×0.97 at batch 1" in check.message
    assert f"×{MERGED_BAND[0]:.2f}–×{MERGED_BAND[1]:.2f}" in check.message
    bad = merged_check({"batch 32": {"LoRA, merged": 7.92}, "batch 1": {"LoRA, merged": 1.03}})
    assert not bad.ok and "outside ×0.90–×1.10 at batch 32." in bad.message
    assert "no figure is drawn" in bad.message
    assert not merged_check(good, band=(0.99, 1.01)).ok


def test_merged_check_bad_arguments():
    with pytest.raises(ValueError, match=r"band must be \(low, high\) with 0 < low < 1 < high, got \(1.1"):
        merged_check({"b": {"LoRA, merged": 1.0}}, band=(1.1, 0.9))
    with pytest.raises(ValueError, match="ratios must map each setting to {model: ratio} including 'LoRA, "):
        merged_check({"b": {"base": 1.0}})
    with pytest.raises(ValueError, match="ratios must map"):
        merged_check({})


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
    with pytest.raises(ValueError, match="rounds must be an integer in \\[1, inf\\], got 0"):
        time_ratios({"base": base}, x, rounds=0)
    with pytest.raises(ValueError, match=r"reference must be one of the models \['a'\], got 'base'"):
        time_ratios({"a": base}, x)


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
