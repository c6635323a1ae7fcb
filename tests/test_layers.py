"""LoRALinear: equal to PEFT's and loralib's LoRA Linear, with the properties the paper states."""

import math

import loralib
import numpy as np
import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model
from torch import nn

from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.trace import creates_shape

D_IN, D_OUT, R = 7, 6, 3
TOL = 1e-6


def make_layer(d_in=D_IN, d_out=D_OUT, r=R, alpha=5.0, seed=0, bias=True, **kw) -> LoRALinear:
    """A LoRALinear with a random base and a random (non-zero) B, so the LoRA path matters."""
    torch.manual_seed(seed)
    layer = LoRALinear(nn.Linear(d_in, d_out, bias=bias), r=r, alpha=alpha, **kw)
    with torch.no_grad():
        layer.lora_B.normal_(std=0.1)  # O(1) outputs, so 1e-6 is a float32-sized tolerance
    return layer


class Plain(nn.Module):
    """A plain module with one linear layer, the kind PEFT adapts by name."""

    def __init__(self, d_in, d_out, bias):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out, bias=bias)


def peft_twin(layer: LoRALinear, dropout=0.0, rslora=False) -> nn.Module:
    """PEFT's LoRA Linear holding the same W0, b, A, B as `layer`."""
    plain = Plain(layer.in_features, layer.out_features, layer.base.bias is not None)
    config = LoraConfig(r=layer.r, lora_alpha=layer.alpha, lora_dropout=dropout,
                        use_rslora=rslora, target_modules=["proj"])
    proj = inject_adapter_in_model(config, plain).proj
    with torch.no_grad():
        proj.base_layer.load_state_dict(layer.base.state_dict())
        proj.lora_A["default"].weight.copy_(layer.lora_A)  # nn.Linear(d_in, r): weight (r, d_in)
        proj.lora_B["default"].weight.copy_(layer.lora_B)  # nn.Linear(r, d_out): weight (d_out, r)
    return proj


def loralib_twin(layer: LoRALinear, dropout=0.0) -> nn.Module:
    """loralib's Linear with the same weights; merge_weights=False so .eval() cannot merge."""
    twin = loralib.Linear(layer.in_features, layer.out_features, r=layer.r, lora_alpha=layer.alpha,
                          lora_dropout=dropout, merge_weights=False, bias=layer.base.bias is not None)
    with torch.no_grad():
        twin.weight.copy_(layer.base.weight)
        if twin.bias is not None:
            twin.bias.copy_(layer.base.bias)
        twin.lora_A.copy_(layer.lora_A)
        twin.lora_B.copy_(layer.lora_B)
    return twin


def forward_backward(module, x, lora_A, lora_B, seed=0):
    """Output and gradients (x, A, B) of a fixed random linear loss of `module(x)`."""
    x = x.detach().clone().requires_grad_(True)
    torch.manual_seed(seed)  # the same dropout mask for every implementation
    out = module(x)
    cotangent = torch.linspace(-1, 1, out.numel()).reshape(out.shape)  # (..., d_out)
    (out * cotangent).sum().backward()
    return out.detach(), x.grad, lora_A.grad, lora_B.grad


def assert_all_close(got, want, tol=TOL):
    """Largest difference ≤ tol · max(1, largest entry): 1e-6 is a few float32 rounding steps."""
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        err, scale = float((g - w).abs().max()), max(1.0, float(w.abs().max()))
        assert err <= tol * scale, f"differs by {err:.3g} (scale {scale:.3g})"


LEAD_SHAPES = [(5,), (2, 3), ()]


@pytest.mark.parametrize("lead", LEAD_SHAPES)
@pytest.mark.parametrize(("r", "alpha", "bias", "rslora"),
                         [(3, 5.0, True, False), (1, 1.0, False, False), (6, 16.0, True, True)])
def test_equals_peft(lead, r, alpha, bias, rslora):
    layer = make_layer(r=r, alpha=alpha, bias=bias, rslora=rslora)
    twin = peft_twin(layer, rslora=rslora)
    assert twin.scaling["default"] == pytest.approx(layer.scaling)
    x = torch.randn(*lead, D_IN)
    ours = forward_backward(layer, x, layer.lora_A, layer.lora_B)
    theirs = forward_backward(twin, x, twin.lora_A["default"].weight, twin.lora_B["default"].weight)
    assert_all_close(ours, theirs)


@pytest.mark.parametrize("lead", LEAD_SHAPES)
@pytest.mark.parametrize(("r", "alpha", "bias"), [(3, 5.0, True), (2, 16.0, False)])
def test_equals_loralib(lead, r, alpha, bias):
    layer = make_layer(r=r, alpha=alpha, bias=bias)
    twin = loralib_twin(layer)
    x = torch.randn(*lead, D_IN)
    assert_all_close(forward_backward(layer, x, layer.lora_A, layer.lora_B),
                     forward_backward(twin, x, twin.lora_A, twin.lora_B))
    twin.eval(), layer.eval()  # eval changes nothing for either (loralib: merge_weights=False)
    assert_all_close(forward_backward(layer, x, layer.lora_A, layer.lora_B)[:1],
                     forward_backward(twin, x, twin.lora_A, twin.lora_B)[:1])


@pytest.mark.parametrize("make_twin", [peft_twin, loralib_twin], ids=["peft", "loralib"])
def test_dropout_equals_reference(make_twin):
    layer = make_layer(dropout=0.4)
    twin = make_twin(layer, dropout=0.4)
    x = torch.randn(4, 2, D_IN)
    A, B = ((twin.lora_A["default"].weight, twin.lora_B["default"].weight) if make_twin is peft_twin
            else (twin.lora_A, twin.lora_B))
    ours = forward_backward(layer, x, layer.lora_A, layer.lora_B, seed=3)
    assert_all_close(ours, forward_backward(twin, x, A, B, seed=3))
    no_dropout = make_layer()
    without = forward_backward(no_dropout, x, no_dropout.lora_A, no_dropout.lora_B)
    assert not torch.allclose(ours[0], without[0])


def test_dropout_acts_on_lora_path_only():
    layer = LoRALinear(nn.Linear(D_IN, D_OUT), r=R, dropout=0.9)  # B = 0: LoRA path is zero
    x = torch.randn(8, D_IN)
    assert torch.equal(layer(x), layer.base(x))


def test_eval_turns_dropout_off():
    layer = make_layer(dropout=0.5).eval()
    x = torch.randn(8, D_IN)
    plain = make_layer().eval()
    assert torch.allclose(layer(x), plain(x), atol=TOL) and torch.equal(layer(x), layer(x))


@pytest.mark.parametrize("init", ["kaiming", "gaussian"])
def test_starts_equal_to_base(init):
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(D_IN, D_OUT), r=R, init=init)
    x = torch.randn(2, 5, D_IN)
    assert torch.equal(layer.lora_B, torch.zeros(D_OUT, R))
    assert layer.lora_A.abs().min() > 0  # A random, so B's first gradient is not zero
    assert torch.equal(layer(x), layer.base(x))


def test_init_distributions():
    torch.manual_seed(0)
    base = nn.Linear(400, 300)
    A = LoRALinear(base, r=50).lora_A  # kaiming_uniform(a=√5): U(-1/√d_in, 1/√d_in)
    bound = 1 / math.sqrt(400)
    assert A.abs().max() <= bound and A.abs().max() > 0.99 * bound
    G = LoRALinear(nn.Linear(400, 300), r=50, init="gaussian").lora_A  # N(0, 1/r²), as PEFT
    assert G.std().item() == pytest.approx(1 / 50, rel=0.02)


def test_both_zero_would_never_learn():
    layer = LoRALinear(nn.Linear(D_IN, D_OUT), r=R)
    with torch.no_grad():
        layer.lora_A.zero_()
    layer(torch.randn(4, D_IN)).square().sum().backward()
    assert torch.equal(layer.lora_A.grad, torch.zeros(R, D_IN))
    assert torch.equal(layer.lora_B.grad, torch.zeros(D_OUT, R))


def test_only_lora_parameters_train():
    layer = make_layer()
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]
    layer(torch.randn(3, D_IN)).sum().backward()
    assert layer.base.weight.grad is None and layer.base.bias.grad is None
    assert layer.lora_A.grad.abs().sum() > 0 and layer.lora_B.grad.abs().sum() > 0


def test_unfrozen_base_gets_correct_gradients():
    layer = make_layer()
    layer.base.requires_grad_(True)
    x = torch.randn(4, D_IN)
    layer(x).square().sum().backward()
    ref = make_layer()
    ref.base.requires_grad_(True)
    (ref.base(x) + x @ ref.delta_weight().t()).square().sum().backward()
    for name in ["base.weight", "base.bias", "lora_A", "lora_B"]:
        got, want = layer.get_parameter(name).grad, ref.get_parameter(name).grad
        assert torch.allclose(got, want, atol=1e-5), name


def test_forward_calls_the_base_module_so_its_hooks_run():
    layer = make_layer()
    seen = []
    layer.base.register_forward_hook(lambda module, args, out: seen.append(tuple(out.shape)))
    layer(torch.randn(2, 4, D_IN))
    assert seen == [(2, 4, D_OUT)]


class ClampedLinear(nn.Linear):
    """An nn.Linear subclass with its own forward (as quantised or custom layers have)."""

    def forward(self, x):
        return super().forward(x).clamp(-0.1, 0.1)


def test_forward_uses_a_subclass_forward_of_the_base():
    torch.manual_seed(0)
    layer = LoRALinear(ClampedLinear(D_IN, D_OUT), r=R)
    with torch.no_grad():
        layer.lora_B.normal_()
    x = torch.randn(5, D_IN)
    want = layer.base(x) + layer.scaling * ((x @ layer.lora_A.t()) @ layer.lora_B.t())
    assert torch.equal(layer(x), want)
    assert layer.base(x).abs().max() <= 0.1 < (x @ layer.base.weight.t() + layer.base.bias).abs().max()


def test_never_forms_BA_while_training():
    layer = make_layer(d_in=11, d_out=13, dropout=0.1)
    x = torch.randn(2, 5, 11, requires_grad=True)
    assert creates_shape(lambda: layer(x).sum().backward(), (13, 11), backward=True) == []
    assert creates_shape(layer.merge, (13, 11), backward=True) != []  # merge forms it once, on purpose


def test_merge_then_unmerge():
    layer = make_layer()
    W0 = layer.base.weight.detach().clone()
    x = torch.randn(4, D_IN)
    before = layer(x)
    layer.merge()
    assert layer.merged
    assert torch.allclose(layer.base.weight, W0 + layer.delta_weight(), atol=TOL)
    assert torch.allclose(layer(x), before, atol=1e-5)
    layer.unmerge()
    assert not layer.merged
    assert (layer.base.weight - W0).abs().max() <= 1e-6
    assert torch.allclose(layer(x), before, atol=1e-5)


def test_merging_twice_raises_and_changes_nothing():
    layer = make_layer()
    layer.merge()
    merged_weight = layer.base.weight.detach().clone()
    with pytest.raises(RuntimeError, match="already merged"):
        layer.merge()
    assert torch.equal(layer.base.weight, merged_weight)
    layer.unmerge()
    with pytest.raises(RuntimeError, match="not merged"):
        layer.unmerge()


def test_merge_is_not_tied_to_train_or_eval():
    layer = make_layer()
    W0 = layer.base.weight.detach().clone()
    layer.eval()
    assert not layer.merged and torch.equal(layer.base.weight, W0)
    layer.merge()
    layer.train()
    assert layer.merged


def test_delta_weight():
    layer = make_layer(alpha=4.0, r=2)
    assert layer.scaling == 2.0
    assert torch.allclose(layer.delta_weight(), 2.0 * layer.lora_B @ layer.lora_A)
    assert layer.delta_weight().shape == (D_OUT, D_IN)
    assert np.linalg.matrix_rank(layer.delta_weight().detach().numpy()) == 2


def test_rslora_scaling():
    layer = LoRALinear(nn.Linear(64, 64), r=16, alpha=8.0, rslora=True)
    assert layer.scaling == pytest.approx(8.0 / 4.0)
    assert "α/√r" in repr(layer) and "r=16" in repr(layer)


@pytest.mark.parametrize("lead", [(), (1,), (2, 3, 4), (0,)])
def test_any_leading_dimensions(lead):
    layer = make_layer()
    x = torch.randn(*lead, D_IN)
    out = layer(x)
    assert out.shape == (*lead, D_OUT)
    rows = x.reshape(-1, D_IN)  # (N, d_in)
    want = rows @ (layer.base.weight + layer.delta_weight()).t() + layer.base.bias  # (N, d_out)
    assert torch.allclose(out.reshape(-1, D_OUT), want, atol=1e-5)


def test_non_contiguous_input():
    layer = make_layer()
    x = torch.randn(D_IN, 4).t()  # (4, d_in), not contiguous
    assert torch.allclose(layer(x), layer(x.contiguous()), atol=TOL)


def test_bfloat16_runs_close_to_float32():
    layer = make_layer(d_in=32, d_out=16, r=4)
    x = torch.randn(3, 5, 32)
    want = layer(x)
    half = make_layer(d_in=32, d_out=16, r=4).to(torch.bfloat16)
    out = half(x.to(torch.bfloat16))
    out.float().square().sum().backward()
    assert out.dtype == torch.bfloat16 and half.lora_A.grad.dtype == torch.bfloat16
    assert torch.isfinite(half.lora_B.grad.float()).all() and half.lora_B.grad.abs().sum() > 0
    assert torch.allclose(out.float(), want, atol=0.1, rtol=0.02)
    half.merge()
    assert torch.allclose(half(x.to(torch.bfloat16)).float(), want, atol=0.2, rtol=0.05)


def test_bfloat16_merge_error_is_larger_than_float32():
    errors = {}
    for dtype in (torch.float32, torch.bfloat16):
        layer = make_layer(d_in=64, d_out=64, r=4).to(dtype)
        with torch.no_grad():
            layer.lora_B.mul_(0.01)
        W0 = layer.base.weight.detach().clone()
        layer.merge()
        layer.unmerge()
        errors[dtype] = float((layer.base.weight - W0).abs().max())
    assert errors[torch.float32] <= 1e-6 < errors[torch.bfloat16]


def test_autocast_runs():
    layer = make_layer(d_in=16, d_out=8, r=2)
    x = torch.randn(4, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = layer(x)
    out.float().sum().backward()
    assert out.dtype == torch.bfloat16 and layer.lora_A.grad.dtype == torch.float32
    assert torch.allclose(out.float(), layer(x).detach(), atol=0.1, rtol=0.05)


def test_state_dict_names():
    keys = set(make_layer().state_dict())
    assert keys == {"base.weight", "base.bias", "lora_A", "lora_B"}


BAD_ARGS = [
    (dict(base=nn.Conv1d(3, 3, 1)), TypeError, "base must be an nn.Linear, got Conv1d"),
    (dict(base="linear"), TypeError, "base must be an nn.Linear, got str"),
    (dict(r=0), ValueError, r"r must be an integer in \[1, min\(d_in, d_out\)\]=\[1, 6\], got 0"),
    (dict(r=-2), ValueError, r"\[1, 6\], got -2"),
    (dict(r=7), ValueError, r"\[1, 6\], got 7"),
    (dict(r=2.5), TypeError, r"r must be an integer .* got 2.5 \(float\)"),
    (dict(r=True), TypeError, r"got True \(bool\)"),
    (dict(alpha=0.0), ValueError, "alpha must be a positive finite number, got 0.0"),
    (dict(alpha=-8), ValueError, "alpha must be a positive finite number, got -8"),
    (dict(alpha=float("inf")), ValueError, "alpha must be a positive finite number, got inf"),
    (dict(alpha="8"), TypeError, "alpha must be a positive number, got '8'"),
    (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\), got 1.0"),
    (dict(dropout=-0.1), ValueError, r"dropout must be in \[0, 1\), got -0.1"),
    (dict(dropout=None), TypeError, r"dropout must be a number in \[0, 1\), got None"),
    (dict(init="xavier"), ValueError, r"init must be one of \['gaussian', 'kaiming'\], got 'xavier'"),
]


@pytest.mark.parametrize(("kwargs", "error", "match"), BAD_ARGS)
def test_bad_arguments_raise(kwargs, error, match):
    args = {"base": nn.Linear(D_IN, D_OUT), "r": 2} | kwargs
    with pytest.raises(error, match=match):
        LoRALinear(**args)


def test_wrapping_twice_raises():
    layer = make_layer()
    with pytest.raises(TypeError, match="already a LoRALinear"):
        LoRALinear(layer)


def test_integer_base_weight_raises():
    base = nn.Linear(D_IN, D_OUT)
    base.weight = nn.Parameter(torch.zeros(D_OUT, D_IN, dtype=torch.long), requires_grad=False)
    with pytest.raises(TypeError, match="base.weight must be a floating-point tensor, got torch.int64"):
        LoRALinear(base, r=2)


BAD_INPUTS = [
    (torch.randn(4, D_IN + 1), ValueError, r"x must have shape \(\.\.\., d_in=7\), got \(4, 8\)"),
    (torch.tensor(1.0), ValueError, r"x must have shape \(\.\.\., d_in=7\), got \(\)"),
    (torch.randn(4, D_IN, dtype=torch.float64), TypeError,
     "x must have the layer's dtype torch.float32, got torch.float64"),
    (torch.ones(4, D_IN, dtype=torch.long), TypeError, "got torch.int64"),
    (np.ones((4, D_IN), dtype=np.float32), TypeError, "x must be a torch.Tensor, got ndarray"),
]


@pytest.mark.parametrize(("x", "error", "match"), BAD_INPUTS)
@pytest.mark.parametrize("merged", [False, True])
def test_bad_inputs_raise(x, error, match, merged):
    layer = make_layer()
    if merged:
        layer.merge()
    with pytest.raises(error, match=match):
        layer(x)


def test_bfloat16_merge_rounds_once():
    layer = make_layer(d_in=64, d_out=32, r=4).to(torch.bfloat16)
    W0 = layer.base.weight.detach().float()
    delta = (layer.lora_B.float() @ layer.lora_A.float()) * layer.scaling  # (d_out, d_in), float32
    layer.merge()
    assert torch.equal(layer.base.weight, (W0 + delta).to(torch.bfloat16))


def test_meta_device_gives_shapes_without_data():
    layer = LoRALinear(nn.Linear(D_IN, D_OUT, device="meta"), r=R)
    x = torch.empty(2, 3, D_IN, device="meta", requires_grad=True)
    layer(x).sum().backward()
    assert layer(x).shape == (2, 3, D_OUT) and layer.lora_A.grad.shape == (R, D_IN)
