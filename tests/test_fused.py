"""FusedLoRALinear: the same numbers as LoRALinear (forward and backward), and exactly the numbers
of the fused layer the course's stored experiments were computed with."""

import pytest
import torch
from torch import nn

from lora_lab.lora.fused import FusedLoRALinear, _LoRAMatmul
from lora_lab.lora.inject import add_lora, lora_layers
from lora_lab.lora.layer import LoRALinear
from lora_lab.lora.variants import DoRALinear, add_variant

D_IN, D_OUT, R = 7, 6, 3
TOL = 1e-6


def twins(bias=True, dropout=0.0, seed=0, dtype=torch.float32):
    """A LoRALinear and a FusedLoRALinear with the same W0, b, A and a random (non-zero) B."""
    torch.manual_seed(seed)
    base = nn.Linear(D_IN, D_OUT, bias=bias).to(dtype)
    plain = LoRALinear(base, r=R, alpha=5.0, dropout=dropout)
    with torch.no_grad():
        plain.lora_B.normal_(std=0.5)
    fused = FusedLoRALinear(nn.Linear(D_IN, D_OUT, bias=bias).to(dtype), r=R, alpha=5.0, dropout=dropout)
    fused.load_state_dict(plain.state_dict())
    return plain, fused


def forward_backward(layer, x, seed=1):
    """Output and gradients of x, A, B under a fixed linear loss (and a fixed dropout mask)."""
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    out = layer(x)
    (out.float() * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return [out.detach(), x.grad, layer.lora_A.grad, layer.lora_B.grad]


def assert_close(got, want, tol=TOL):
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert float((g - w).abs().max()) <= tol * max(1.0, float(w.abs().max()))


@pytest.mark.parametrize("lead", [(5,), (2, 3), ()])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dropout", [0.0, 0.4])
def test_fused_equals_plain_forward_and_backward(lead, bias, dropout):
    plain, fused = twins(bias=bias, dropout=dropout)
    x = torch.randn(*lead, D_IN)
    got = forward_backward(fused, x)
    assert_close(got, forward_backward(plain, x))
    assert got[2].abs().sum() > 0 and got[3].abs().sum() > 0


def test_dropout_really_acts_on_both():
    plain, fused = twins(dropout=0.5)
    x = torch.randn(4, 3, D_IN)
    plain.eval(), fused.eval()
    eval_out = forward_backward(fused, x)[0]
    plain.train(), fused.train()
    train_out = forward_backward(fused, x)[0]
    assert not torch.allclose(train_out, eval_out)
    assert_close(forward_backward(fused, x), forward_backward(plain, x))


def test_merged_fused_is_the_base_alone():
    plain, fused = twins()
    x = torch.randn(4, D_IN)
    before = fused(x).detach()
    plain.merge(), fused.merge()
    assert torch.equal(fused(x), fused.base(x)) and torch.equal(fused(x), plain(x))
    assert torch.allclose(fused(x), before, atol=1e-5)


def test_autocast_falls_back_to_the_plain_forward():
    plain, fused = twins()
    x = torch.randn(4, D_IN)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, want = forward_backward(fused, x), forward_backward(plain, x)
    assert got[0].dtype == torch.bfloat16
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)


def old_formula(x, xd, W, b, A, B, s, g):
    """The pre-split LoRALinear, written out: addmm into the base GEMM's output; g·B shared."""
    xl = x if xd is None else xd
    xa = xl @ A.t()  # (N, r)
    out = torch.addmm(b, x, W.t()) if b is not None else x @ W.t()
    out.addmm_(xa, B.t(), alpha=s)
    gB = g @ B  # (N, r)
    gx = g @ W
    if xd is None:
        gx.addmm_(gB, A, alpha=s)
    return out, gx, (gB.t() @ xl).mul_(s), (xa.t() @ g).t().mul_(s), (gB @ A).mul_(s)


@pytest.mark.parametrize("bias", [True, False])
def test_bit_identical_to_the_layer_the_stored_results_came_from(bias):
    _, fused = twins(bias=bias)
    x = torch.randn(2, 4, D_IN, requires_grad=True)
    out = fused(x)
    g = torch.linspace(-1, 1, out.numel()).reshape(-1, D_OUT)  # (N, d_out)
    out.backward(g.reshape(out.shape))
    W, b = fused.base.weight, fused.base.bias
    want = old_formula(x.detach().reshape(-1, D_IN), None, W, b, fused.lora_A.detach(),
                       fused.lora_B.detach(), fused.scaling, g)
    assert torch.equal(out.detach().reshape(-1, D_OUT), want[0])
    assert torch.equal(x.grad.reshape(-1, D_IN), want[1])
    assert torch.equal(fused.lora_A.grad, want[2]) and torch.equal(fused.lora_B.grad, want[3])


@pytest.mark.parametrize("with_dropout", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_custom_backward_passes_gradcheck(with_dropout, bias):
    g = torch.Generator().manual_seed(0)

    def arg(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)

    args = (arg(5, D_IN), arg(5, D_IN) if with_dropout else None, arg(D_OUT, D_IN),
            arg(D_OUT) if bias else None, arg(R, D_IN), arg(D_OUT, R), 0.7)
    assert torch.autograd.gradcheck(_LoRAMatmul.apply, args)


def test_fused_skips_base_hooks_plain_does_not():
    plain, fused = twins()
    calls = []
    for name, layer in (("plain", plain), ("fused", fused)):
        layer.base.register_forward_hook(lambda m, a, o, name=name: calls.append(name))
        layer(torch.randn(2, D_IN))
    assert calls == ["plain"]  # the price of fusing, stated in lora_lab.lora.fused


def test_bad_inputs_raise_like_the_plain_layer():
    _, fused = twins()
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., d_in=7\), got \(4, 8\)"):
        fused(torch.randn(4, D_IN + 1))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        fused([1.0] * D_IN)


class Two(nn.Module):
    def __init__(self):
        super().__init__()
        self.q = nn.Linear(D_IN, D_IN)
        self.v = nn.Linear(D_IN, D_OUT)

    def forward(self, x):
        return self.v(self.q(x))


@pytest.mark.parametrize("fused", [False, True])
def test_add_lora_builds_the_chosen_layer(fused):
    model = add_lora(Two(), ["q", "v"], r=2, fused=fused)
    kinds = {type(m) for m in lora_layers(model).values()}
    assert kinds == {FusedLoRALinear if fused else LoRALinear}


@pytest.mark.parametrize(("variant", "kind"), [("lora", FusedLoRALinear), ("rslora", FusedLoRALinear),
                                               ("pissa", FusedLoRALinear), ("dora", DoRALinear)])
def test_add_variant_fused(variant, kind):
    torch.manual_seed(0)
    plain = add_variant(Two(), ["q", "v"], variant=variant, r=2)
    torch.manual_seed(0)
    fused = add_variant(Two(), ["q", "v"], variant=variant, r=2, fused=True)
    assert {type(m) for m in lora_layers(fused).values()} == {kind}
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(),
                                                  fused.state_dict().values(), strict=True))
    x = torch.randn(3, D_IN)
    assert torch.allclose(plain(x), fused(x), atol=1e-6)


@pytest.mark.parametrize("fn", [add_lora, add_variant])
def test_fused_must_be_a_bool(fn):
    with pytest.raises(TypeError, match="fused must be True or False, got 'yes'"):
        fn(Two(), ["q"], r=2, fused="yes")
