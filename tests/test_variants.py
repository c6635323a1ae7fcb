"""rsLoRA, DoRA and PiSSA equal PEFT's `use_rslora`, `use_dora` and `init_lora_weights="pissa"` on the
same plain module and weights; PiSSA leaves the output unchanged; DoRA merges; bad input is refused."""

import copy
import math

import pytest
import torch
from torch import nn

from lora_lab.lora.inject import add_lora, count_parameters, lora_layers, merge_lora, unmerge_lora
from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.variants import DoRALinear, add_variant, magnitude_direction_change, pissa_init_

peft = pytest.importorskip("peft")

TARGETS = ["q_proj", "v_proj"]
PEFT_OPTIONS = {"rslora": {"use_rslora": True}, "dora": {"use_dora": True},
                "pissa": {"init_lora_weights": "pissa"}, "lora": {}}


class Tiny(nn.Module):
    """Two non-square linear layers (16 -> 12 -> 16) with biases, as PEFT would see any model."""

    def __init__(self):
        super().__init__()
        self.q_proj, self.v_proj = nn.Linear(16, 12), nn.Linear(12, 16)

    def forward(self, x):
        return self.v_proj(torch.tanh(self.q_proj(x)))


def _pair(variant, r=3, alpha=6.0, dropout=0.0):
    torch.manual_seed(0)
    base = Tiny()
    ours = add_variant(copy.deepcopy(base), TARGETS, variant, r=r, alpha=alpha, dropout=dropout)
    config = peft.LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=TARGETS,
                             **PEFT_OPTIONS[variant])
    theirs = peft.get_peft_model(copy.deepcopy(base), config)
    return base, ours, theirs


def _peft_layer(model, name):
    return getattr(model.base_model.model, name)


def _set_same(ours, theirs, seed=1, magnitude=True):
    """Give both models the same A, B (and DoRA magnitude), small enough that fp32 sums agree."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in TARGETS:
            mine, peft_layer = getattr(ours, name), _peft_layer(theirs, name)
            A = 0.3 * torch.randn(mine.lora_A.shape, generator=gen)
            B = 0.3 * torch.randn(mine.lora_B.shape, generator=gen)
            mine.lora_A.copy_(A)
            mine.lora_B.copy_(B)
            peft_layer.lora_A["default"].weight.copy_(A)
            peft_layer.lora_B["default"].weight.copy_(B)
            if magnitude and isinstance(mine, DoRALinear):
                m = mine.lora_magnitude + 0.2 * torch.randn(mine.lora_magnitude.shape, generator=gen)
                mine.lora_magnitude.copy_(m)
                peft_layer.lora_magnitude_vector["default"].weight.copy_(m)


def _x(n=7):
    return torch.randn(n, 16, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize("variant", ["lora", "rslora", "dora", "pissa"])
def test_equal_to_peft_at_init_for_the_same_weights(variant):
    _, ours, theirs = _pair(variant)
    if variant != "pissa":  # A is random in both; PiSSA's A, B come from the SVD alone
        with torch.no_grad():
            for name in TARGETS:
                getattr(ours, name).lora_A.copy_(_peft_layer(theirs, name).lora_A["default"].weight)
    x = _x()
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert count_parameters(ours)[0] == sum(p.numel() for p in theirs.parameters() if p.requires_grad)


@pytest.mark.parametrize("variant", ["lora", "rslora", "dora", "pissa"])
def test_equal_to_peft_after_setting_the_same_weights(variant):
    _, ours, theirs = _pair(variant)
    _set_same(ours, theirs)
    x = _x()
    y_ours, y_theirs = ours(x), theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
    assert (y_ours - Tiny.forward(ours, x)).abs().max() == 0  # sanity: the same forward path
    y_ours.square().sum().backward()
    y_theirs.square().sum().backward()
    for name in TARGETS:  # the gradients agree too: the same maths, the same detached DoRA norm
        mine, peft_layer = getattr(ours, name), _peft_layer(theirs, name)
        for ours_p, theirs_p in ((mine.lora_A, peft_layer.lora_A), (mine.lora_B, peft_layer.lora_B)):
            torch.testing.assert_close(ours_p.grad, theirs_p["default"].weight.grad, rtol=1e-4, atol=1e-5)
        if variant == "dora":
            torch.testing.assert_close(mine.lora_magnitude.grad,
                                       peft_layer.lora_magnitude_vector["default"].weight.grad,
                                       rtol=1e-4, atol=1e-5)


def test_rslora_scaling_is_alpha_over_sqrt_r():
    _, ours, theirs = _pair("rslora", r=4, alpha=6.0)
    assert ours.q_proj.scaling == pytest.approx(6.0 / math.sqrt(4))
    assert theirs.base_model.model.q_proj.scaling["default"] == pytest.approx(ours.q_proj.scaling)
    _, plain, _ = _pair("lora", r=4, alpha=6.0)
    assert plain.q_proj.scaling == pytest.approx(6.0 / 4)


def test_dora_with_dropout_matches_peft_in_training_mode():
    _, ours, theirs = _pair("dora", dropout=0.3)
    _set_same(ours, theirs)
    ours.train()
    theirs.train()
    x = _x()
    torch.manual_seed(5)
    y_ours = ours(x)
    torch.manual_seed(5)
    y_theirs = theirs(x)
    torch.testing.assert_close(y_ours, y_theirs, rtol=1e-5, atol=1e-5)
    ours.eval()
    assert not torch.allclose(ours(x), y_ours)  # dropout did act in training mode


def test_dora_magnitude_starts_at_the_row_norms_and_the_norm_is_per_output_row():
    torch.manual_seed(0)
    layer = DoRALinear(nn.Linear(16, 12), r=3)
    torch.testing.assert_close(layer.lora_magnitude.detach(), layer.base.weight.norm(dim=1))
    assert layer.lora_magnitude.shape == (12,)  # d_out: one magnitude per output feature
    x = _x()
    torch.testing.assert_close(layer(x), layer.base(x))  # B = 0 and m = ‖W0‖: unchanged at init


def test_dora_norm_is_detached_so_magnitude_grad_is_w_hat_x():
    torch.manual_seed(0)
    layer = DoRALinear(nn.Linear(16, 12, bias=False), r=3)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = _x(1)
    layer(x).sum().backward()
    direction = layer.weight().detach() / layer.lora_magnitude.detach()[:, None]  # rows of V/‖V‖
    torch.testing.assert_close(layer.lora_magnitude.grad, (direction @ x[0]))  # dy/dm = V x / ‖V‖


def test_dora_merge_equals_peft_merge_and_unmerge_restores_w0():
    base, ours, theirs = _pair("dora")
    _set_same(ours, theirs)
    x = _x()
    before = ours(x)
    merge_lora(ours)
    merged_theirs = theirs.merge_and_unload()
    for name in TARGETS:
        torch.testing.assert_close(getattr(ours, name).base.weight, getattr(merged_theirs, name).weight,
                                   rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours(x), before, rtol=1e-5, atol=1e-5)
    with pytest.raises(RuntimeError, match="already merged"):
        ours.q_proj.merge()
    unmerge_lora(ours)
    torch.testing.assert_close(ours.q_proj.base.weight, base.q_proj.weight, rtol=1e-5, atol=1e-6)
    with pytest.raises(RuntimeError, match="not merged"):
        ours.q_proj.unmerge()


@pytest.mark.parametrize(("d_out", "d_in", "r"), [(12, 16, 3), (16, 12, 5), (8, 8, 8)])
def test_pissa_residual_plus_ba_is_w0_and_ba_is_the_best_rank_r_part(d_out, d_in, r):
    torch.manual_seed(0)
    linear = nn.Linear(d_in, d_out)
    W0 = linear.weight.detach().clone()
    layer = pissa_init_(LoRALinear(linear, r=r, alpha=2.0 * r))
    torch.testing.assert_close(layer.base.weight + layer.delta_weight(), W0, rtol=1e-5, atol=1e-6)
    U, S, Vh = torch.linalg.svd(W0)
    torch.testing.assert_close(layer.delta_weight(), (U[:, :r] * S[:r]) @ Vh[:r], rtol=1e-4, atol=1e-5)
    x = _x(5)[:, :d_in]
    torch.testing.assert_close(layer(x), linear.bias + x @ W0.t(), rtol=1e-5, atol=1e-5)


def test_pissa_model_output_is_unchanged_and_residual_is_what_stays_frozen():
    torch.manual_seed(0)
    base = Tiny()
    model = add_variant(copy.deepcopy(base), TARGETS, "pissa", r=4)
    x = _x()
    torch.testing.assert_close(model(x), base(x), rtol=1e-5, atol=1e-5)
    assert not model.q_proj.base.weight.requires_grad
    assert (model.q_proj.base.weight - base.q_proj.weight).abs().max() > 0.1  # the base is now the residual


def test_add_variant_dora_keeps_the_lora_a_and_the_random_stream():
    torch.manual_seed(3)
    plain = add_lora(Tiny(), TARGETS, r=3)
    after_plain = torch.rand(1)
    torch.manual_seed(3)
    dora = add_variant(Tiny(), TARGETS, "dora", r=3)
    after_dora = torch.rand(1)
    assert torch.equal(plain.q_proj.lora_A, dora.q_proj.lora_A)  # same seed, same A as plain LoRA
    assert torch.equal(after_plain, after_dora)  # building DoRA drew no extra random numbers
    assert set(lora_layers(dora)) == set(TARGETS)


def test_trainable_parameters_per_variant():
    counts = {v: count_parameters(add_variant(Tiny(), TARGETS, v, r=3))[0] for v in PEFT_OPTIONS}
    lora = 3 * (16 + 12) + 3 * (12 + 16)
    assert counts == {"lora": lora, "rslora": lora, "pissa": lora, "dora": lora + 12 + 16}


def test_second_call_keeps_earlier_dora_magnitudes_trainable():
    model = add_variant(Tiny(), ["q_proj"], "dora", r=2)
    add_variant(model, ["v_proj"], "lora", r=2)
    assert model.q_proj.lora_magnitude.requires_grad
    assert isinstance(model.q_proj, DoRALinear) and type(model.v_proj) is LoRALinear


def test_magnitude_direction_change():
    W0 = torch.tensor([[3.0, 4.0], [1.0, 0.0]])
    W = torch.tensor([[6.0, 8.0], [0.0, 1.0]])
    dm, dd = magnitude_direction_change(W0, W)
    torch.testing.assert_close(dm, torch.tensor([5.0, 0.0]))  # row 0 doubled, row 1 rotated
    torch.testing.assert_close(dd, torch.tensor([0.0, 1.0]))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="variant must be one of"):
        add_variant(Tiny(), TARGETS, "qlora")
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        add_variant("not a model", TARGETS, "dora")
    with pytest.raises(ValueError, match="matches no nn.Linear"):
        add_variant(Tiny(), ["w_proj"], "dora")
    with pytest.raises(ValueError, match="r must be an integer"):
        add_variant(Tiny(), TARGETS, "pissa", r=13)
    with pytest.raises(TypeError, match="layer must be a LoRALinear"):
        pissa_init_(nn.Linear(3, 3))
    merged = LoRALinear(nn.Linear(4, 4), r=2)
    merged.merge()
    with pytest.raises(RuntimeError, match="unmerge"):
        pissa_init_(merged)
    with pytest.raises(TypeError, match="plain LoRALinear"):
        DoRALinear.from_lora(DoRALinear(nn.Linear(4, 4), r=2))
    with pytest.raises(ValueError, match="one shape"):
        magnitude_direction_change(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="already has LoRA"):
        add_variant(add_variant(Tiny(), TARGETS, "dora"), ["q_proj"], "dora")


@pytest.mark.parametrize("variant", ["lora", "rslora", "dora", "pissa"])
def test_peft_twin_equals_ours_after_randomized_training(variant):
    from lora_lab.lora.peft_variants import peft_twin, randomize_adapters_

    torch.manual_seed(0)
    base = Tiny()
    ours = randomize_adapters_(add_variant(copy.deepcopy(base), TARGETS, variant, r=3, alpha=6.0), 0.2)
    twin = peft_twin(base, ours, TARGETS, variant)
    x = _x()
    assert (ours(x) - base(x)).abs().max() > 1e-2  # the adapters do change the output
    torch.testing.assert_close(ours(x), twin(x), rtol=1e-5, atol=1e-5)


def test_peft_twin_refuses_a_model_without_adapters():
    from lora_lab.lora.peft_variants import peft_twin

    with pytest.raises(ValueError, match="no LoRA layers"):
        peft_twin(Tiny(), Tiny(), TARGETS, "dora")
    with pytest.raises(ValueError, match="variant must be one of"):
        peft_twin(Tiny(), Tiny(), TARGETS, "vera")


def test_dora_forward_refuses_bad_input():
    layer = DoRALinear(nn.Linear(4, 3), r=2)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        layer([1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., d_in=4\)"):
        layer(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="layer's dtype"):
        layer(torch.zeros(2, 4, dtype=torch.float64))
