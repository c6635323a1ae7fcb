"""The module checkers' rarer message paths (a learner's layer that raises, returns the wrong thing,
or trains the wrong tensors), each asserted on its English twin, in English and in Chinese."""

import pytest
import torch
from torch import nn

from lora_lab.course.exercises import switching
from lora_lab.course.exercises.add_lora import check_add_lora, check_attention_fix
from lora_lab.course.exercises.lora_module import check_lora_linear
from lora_lab.course.exercises.notes_fix import check_notes_fix
from lora_lab.course.exercises.problems import Problem
from lora_lab.course.exercises.switching import check_serve_in_turn, check_unmerge
from lora_lab.course.i18n import N_
from lora_lab.lora.layer import LoRALinear

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _boom(*args):
    raise RuntimeError("boom")


class ZeroA(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        nn.init.zeros_(self.lora_A)


class TallA(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.lora_A = nn.Parameter(torch.zeros(r + 1, base.in_features))


class TensorA(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        A = self.lora_A.detach().clone()
        del self.lora_A
        self.lora_A = A


class ExtraTrainable(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.extra = nn.Parameter(torch.zeros(1))


class Renamed(LoRALinear):
    def __init__(self, base, r, alpha):
        super().__init__(base, r, alpha)
        self.linear = self.base
        self.base = nn.Linear(base.in_features, base.out_features)


class DetachedA(LoRALinear):
    def forward(self, x):
        return self.base(x) + self.scaling * (x @ self.lora_A.detach().T) @ self.lora_B.T


class RaisingForward(LoRALinear):
    forward = _boom


class FailingBackward(LoRALinear):
    def forward(self, x):
        out = super().forward(x)
        if out.requires_grad:
            out.register_hook(_boom)
        return out


class RaisingMerge(LoRALinear):
    merge = _boom


class RaisingUnmerge(LoRALinear):
    unmerge = _boom


class NoneForward(LoRALinear):
    def forward(self, x):
        return None


class FlatForward(LoRALinear):
    def forward(self, x):
        return super().forward(x).flatten()


@pytest.mark.parametrize(("cls", "fragment"), [
    (ZeroA, "A starts at zero: with B = 0 too"),
    (TallA, "`lora_A` must be (4, 16), got (5, 16)"),
    (TensorA, "expected an nn.Parameter called `lora_A`, got Tensor"),
    (ExtraTrainable, "exactly lora_A and lora_B should be trainable, got 3 trainable tensors"),
    (Renamed, "keep the wrapped layer as `self.base`"),
    (DetachedA, "`lora_A` got no gradient"),
    (RaisingForward, "your forward raised RuntimeError: boom"),
    (FailingBackward, "your backward raised RuntimeError: boom"),
    (RaisingMerge, "your merge() raised RuntimeError: boom"),
    (RaisingUnmerge, "your unmerge() raised RuntimeError: boom"),
    (NoneForward, "at the start the layer must equal its base: expected a tensor, got NoneType"),
    (FlatForward, "at the start the layer must equal its base: expected shape (5, 8), got (40,)"),
])
def test_lora_linear_names_what_went_wrong(lang, cls, fragment):
    result = check_lora_linear(cls, show=False)
    assert not result.passed and fragment in lang.en(result.message), lang.en(result.message)


class Notes(nn.Module):
    """The notes' layer fixed (weight, bias, A, B), with switches for two rarer mistakes."""

    constant_A = touch_weight = False

    def __init__(self, d_in, d_out, r, alpha):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(d_out, d_in), requires_grad=False)
        self.bias = nn.Parameter(torch.zeros(d_out))
        self.A = nn.Parameter(torch.full((r, d_in), 0.1) if self.constant_A else 0.02 * torch.randn(r, d_in))
        self.B = nn.Parameter(torch.zeros(d_out, r))
        self.scaling = alpha / r

    def forward(self, x):
        if self.touch_weight:
            self.weight.grad = torch.zeros_like(self.weight)
        return nn.functional.linear(x, self.weight, self.bias) + self.scaling * (x @ self.A.T) @ self.B.T


class ConstantA(Notes):
    constant_A = True


class WeightGrad(Notes):
    touch_weight = True


@pytest.mark.parametrize(("cls", "fragment"), [
    (ConstantA, "A must start random (the notes draw it from a normal distribution)"),
    (WeightGrad, "the frozen weight received a gradient"),
])
def test_notes_fix_names_what_went_wrong(lang, cls, fragment):
    assert check_notes_fix(Notes, show=False).passed
    result = check_notes_fix(cls, show=False)
    assert not result.passed and fragment in lang.en(result.message), lang.en(result.message)


def _adapt(model, names, r, alpha, layer=LoRALinear):
    model.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, layer(getattr(parent, child), r=r, alpha=alpha))
    return model


def _chosen(model, targets):
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)
            and any(n == t or n.endswith("." + t) for t in targets)]


@pytest.mark.parametrize(("fn", "fragment"), [
    (lambda m, t, r, a: _adapt(m, _chosen(m, t)[:1], r, a),
     "expected LoRA on ['layers.0.query', 'layers.0.value'"),
    (lambda m, t, r, a: _adapt(m, [n for n, x in m.named_modules() if isinstance(x, nn.Linear)], r, a),
     "only layers whose name equals a target"),
    (lambda m, t, r, a: _adapt(m, _chosen(m, t), r + 1, a),
     "expected 160 trainable parameters (r·(d_in + d_out) per layer), got 240"),
    (lambda m, t, r, a: _adapt(m, _chosen(m, t), r, a, layer=RaisingForward), "the adapted model raised"),
    (_boom, "your add_lora raised RuntimeError: boom"),
])
def test_add_lora_names_what_went_wrong(lang, fn, fragment):
    result = check_add_lora(fn, show=False)
    assert not result.passed and fragment in lang.en(result.message), lang.en(result.message)


class QueryTrains(nn.Module):
    """The notes' attention with W_O frozen and α/r, but W_Q left trainable."""

    def __init__(self, d, r, alpha):
        super().__init__()
        self.d, self.scaling = d, alpha / r
        for n in ("W_Q", "W_K", "W_V", "W_O"):
            setattr(self, n, nn.Linear(d, d).requires_grad_(n == "W_Q"))
        for p in "QKV":
            setattr(self, f"A_{p}", nn.Parameter(0.02 * torch.randn(r, d)))
            setattr(self, f"B_{p}", nn.Parameter(torch.zeros(d, r)))

    def forward(self, q, k, v):
        s = self.scaling
        Q, K, V = (getattr(self, f"W_{p}")(x) + s * (x @ getattr(self, f"A_{p}").T)
                   @ getattr(self, f"B_{p}").T for p, x in zip("QKV", (q, k, v), strict=True))
        return self.W_O(torch.softmax(Q @ K.transpose(-2, -1) / self.d ** 0.5, dim=-1) @ V)


def test_attention_fix_names_an_extra_trainable_matrix(lang):
    result = check_attention_fix(QueryTrains, show=False)
    message = lang.en(result.message)
    assert not result.passed and "exactly the six LoRA factors" in message and "W_Q.weight" in message
    assert "W_O is still" not in message


def _unmerge_twice_scaled(layer):
    with torch.no_grad():
        layer.base.weight -= layer.scaling * layer.delta_weight()
    layer.merged = False


def _unmerge_three_times(layer):
    with torch.no_grad():
        layer.base.weight -= 3 * layer.delta_weight()
    layer.merged = False


def _never_refuses(layer):
    if layer.merged:
        layer.unmerge()


def _subtracts_then_refuses(layer):
    with torch.no_grad():
        layer.base.weight -= layer.delta_weight()
    if not layer.merged:
        raise RuntimeError("not merged")
    layer.merged = False


@pytest.mark.parametrize(("fn", "fragment"), [
    (_unmerge_twice_scaled, "the scaling is applied twice"),
    (_unmerge_three_times, "after unmerge, base.weight must be W0 again (largest difference"),
    (_never_refuses, "must refuse (raise an error): it would subtract ΔW a second time"),
    (_subtracts_then_refuses, "unmerge on an unmerged layer changed base.weight before refusing"),
])
def test_unmerge_names_what_went_wrong(lang, fn, fragment):
    result = check_unmerge(fn, show=False)
    message = lang.en(result.message)
    assert not result.passed and fragment in message and "and yours did" not in message, message


def _serve(layer, adapters, x, after=None):
    outputs = []
    for A, B in adapters:
        with torch.no_grad():
            layer.lora_A.copy_(A)
            layer.lora_B.copy_(B)
        layer.merge()
        with torch.no_grad():
            outputs.append(layer(x))
        layer.unmerge()
    if after is not None:
        after(layer)
    return outputs


def _nudge(layer):
    with torch.no_grad():
        layer.base.weight += 1.0


@pytest.mark.parametrize(("fn", "fragment"), [
    (lambda layer, adapters, x: _serve(layer, adapters, x)[:1], "a list of 2 tensors; got a list of 1"),
    (lambda layer, adapters, x: [layer.base(x).detach() for _ in adapters], "task 0: ΔW is missing"),
    (lambda layer, adapters, x: _serve(layer, adapters, x, after=_nudge),
     "after serving every task, base.weight must be W0 again"),
])
def test_serve_in_turn_names_what_went_wrong(lang, fn, fragment):
    result = check_serve_in_turn(fn, show=False)
    assert not result.passed and fragment in lang.en(result.message), lang.en(result.message)


@pytest.mark.parametrize(("got", "fragment"), [
    ([1.0], "after unmerge, forward: expected a tensor of shape (5, 8), got list"),
    (torch.zeros(5, 3), "after unmerge, forward: expected a tensor of shape (5, 8), got (5, 3)"),
])
def test_same_output_names_a_wrong_shape(lang, got, fragment):
    # unmerge's output check runs the package's own layer, whose shape a learner cannot change:
    # this path is reached by the helper itself
    with pytest.raises(Problem) as caught:
        switching._same_output(got, torch.zeros(5, 8), N_("after unmerge, forward"))
    assert fragment in lang.en(caught.value.text)


def test_lora_init_names_a_pair_that_is_no_tensors(lang):
    from lora_lab.course.exercises.layers import check_lora_init

    result = check_lora_init(lambda d_in, d_out, r: (None, None), show=False)
    message = lang.en(result.message)
    assert not result.passed and "A and B must be tensors, got NoneType and NoneType" in message


def test_a_message_copies_as_its_plain_text(lang):
    import copy
    import pickle

    result = check_lora_linear(ZeroA, show=False)
    for twin in (copy.deepcopy(result.message), pickle.loads(pickle.dumps(result.message))):
        assert type(twin) is str and twin == result.message
