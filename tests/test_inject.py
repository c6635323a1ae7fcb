"""add_lora reaches any nn.Linear by name (as PEFT does), keeps outputs, counts, merges, and refuses
bad input with errors that say what to do."""

import copy

import pytest
import torch
from torch import nn

from lora_lab.lora.attention import MultiHeadSelfAttention, TransformerBlock
from lora_lab.lora.inject import (
    add_lora,
    count_parameters,
    format_parameter_table,
    linear_names,
    lora_layers,
    lora_state_dict,
    merge_lora,
    parameter_table,
    unmerge_lora,
)
from lora_lab.lora.layer import LoRALinear

TARGET_SETS = [["q_proj"], ["q_proj", "v_proj"], ["q_proj", "k_proj", "v_proj", "o_proj"],
               ["fc1", "fc2"], ["attn.o_proj", "mlp.fc2"]]


def _block(seed: int = 0) -> TransformerBlock:
    torch.manual_seed(seed)
    return TransformerBlock(8, 2, d_ff=12)


class Foreign(nn.Module):
    """A model add_lora was not written for: other names, nesting, a tricky `xq_proj`, a top-level q_proj."""

    def __init__(self):
        super().__init__()
        self.q_proj = nn.Linear(6, 6)
        self.attn = nn.ModuleDict({"q_proj": nn.Linear(6, 6), "xq_proj": nn.Linear(6, 6)})
        self.blocks = nn.ModuleList([nn.Sequential(nn.Linear(6, 10), nn.Tanh(), nn.Linear(10, 6))
                                     for _ in range(2)])
        self.head = nn.Linear(6, 4, bias=False)

    def forward(self, x):
        x = self.q_proj(x) + self.attn["q_proj"](x) * self.attn["xq_proj"](x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)


def _randomize_b(model: nn.Module, seed: int = 1) -> None:
    """B starts at zero; give it values so ΔW ≠ 0 and comparisons mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=g, dtype=layer.lora_B.dtype))


@pytest.mark.parametrize("targets", TARGET_SETS)
def test_outputs_unchanged_after_add_lora(targets):
    block = _block()
    x = torch.randn(2, 5, 8)
    before = block(x)
    add_lora(block, targets, r=2)
    torch.testing.assert_close(block(x), before, atol=0, rtol=0)


@pytest.mark.parametrize("targets", TARGET_SETS)
@pytest.mark.parametrize("r", [1, 4])
def test_trainable_count_is_r_times_din_plus_dout(targets, r):
    block = _block()
    _, total_before = count_parameters(block)
    add_lora(block, targets, r=r)
    layers = lora_layers(block)
    expected = sum(r * (m.in_features + m.out_features) for m in layers.values())
    trainable, total = count_parameters(block)
    assert trainable == expected and total == total_before + expected
    assert {n for n, p in block.named_parameters() if p.requires_grad} == \
        {f"{n}.lora_{ab}" for n in layers for ab in "AB"}


def test_count_for_wq_wv_in_a_block():
    block = add_lora(_block(), ["q_proj", "v_proj"], r=4)
    assert count_parameters(block)[0] == 2 * 4 * (8 + 8)  # paper §5.1 formula: 2·L̂·d_model·r


def test_gradients_only_in_lora_parameters():
    block = add_lora(_block(), ["q_proj", "fc1"], r=2)
    _randomize_b(block)
    block(torch.randn(2, 5, 8)).square().sum().backward()
    for name, p in block.named_parameters():
        has_grad = p.grad is not None and bool(p.grad.abs().sum() > 0)
        assert has_grad == ("lora_" in name), name


def test_second_call_keeps_first_adapters_trainable():
    block = add_lora(_block(), ["q_proj"], r=2)
    add_lora(block, ["fc1"], r=2)
    assert block.attn.q_proj.lora_A.requires_grad and block.mlp.fc1.lora_B.requires_grad
    assert count_parameters(block)[0] == 2 * (8 + 8) + 2 * (8 + 12)


def test_add_lora_passes_options_and_returns_model():
    block = _block()
    out = add_lora(block, ["v_proj"], r=2, alpha=6.0, dropout=0.1, init="gaussian", rslora=True)
    layer = block.attn.v_proj
    assert out is block and isinstance(layer, LoRALinear)
    assert (layer.r, layer.alpha, layer.init, layer.rslora) == (2, 6.0, "gaussian", True)
    assert layer.scaling == pytest.approx(6.0 / 2 ** 0.5) and layer.dropout.p == 0.1


# --- names: suffix matching exactly as PEFT's target_modules ---------------------------------

def _peft_adapted(model: nn.Module, targets: list[str]) -> set[str]:
    peft = pytest.importorskip("peft")
    from peft.tuners.lora import LoraLayer

    model = peft.inject_adapter_in_model(peft.LoraConfig(r=2, target_modules=targets), model)
    return {n for n, m in model.named_modules() if isinstance(m, LoraLayer)}


@pytest.mark.parametrize("targets", [["q_proj"], ["attn.q_proj"], ["xq_proj", "head"], ["blocks.1.2"],
                                     ["2"], ["q_proj", "2"], ["0.2", "attn.xq_proj"]])
def test_same_layers_as_peft(targets):
    ours = set(lora_layers(add_lora(Foreign(), targets, r=2)))
    assert ours == _peft_adapted(Foreign(), targets)


@pytest.mark.parametrize("targets", [["0"], ["attn"], ["proj"], ["q_proj", "blocks"]])
def test_refused_like_peft(targets):
    """"0" also names the Sequential `blocks.0`, "attn" a ModuleDict: PEFT refuses both, so do we."""
    with pytest.raises(ValueError, match="not supported|not found"):
        _peft_adapted(Foreign(), targets)
    with pytest.raises(ValueError, match=f"target '{targets[-1]}' matches"):
        add_lora(Foreign(), targets)


def test_suffix_needs_a_dot():
    names = set(lora_layers(add_lora(Foreign(), ["q_proj"], r=2)))
    assert names == {"q_proj", "attn.q_proj"}  # not attn.xq_proj


def test_linear_names_skip_lora_bases():
    model = add_lora(Foreign(), ["head"], r=2)
    assert "head.base" not in linear_names(model)
    assert linear_names(Foreign()) == ["q_proj", "attn.q_proj", "attn.xq_proj", "blocks.0.0", "blocks.0.2",
                                       "blocks.1.0", "blocks.1.2", "head"]


# --- the same maths as PEFT, to 1e-6 ---------------------------------------------------------

def _peft_copy(model: nn.Module, ours: nn.Module, targets, r, alpha, rslora=False) -> nn.Module:
    peft = pytest.importorskip("peft")
    config = peft.LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, use_rslora=rslora)
    theirs = peft.inject_adapter_in_model(config, copy.deepcopy(model))
    with torch.no_grad():
        for name, layer in lora_layers(ours).items():
            peft_layer = theirs.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(layer.lora_A)  # PEFT's nn.Linear(d_in, r): (r, d_in)
            peft_layer.lora_B["default"].weight.copy_(layer.lora_B)  # nn.Linear(r, d_out): (d_out, r)
    return theirs


@pytest.mark.parametrize(("make", "targets", "shape"), [
    (_block, ["q_proj", "v_proj"], (2, 5, 8)),
    (_block, ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"], (2, 5, 8)),
    (Foreign, ["q_proj", "2", "head"], (4, 6)),
])
@pytest.mark.parametrize(("r", "alpha", "rslora"), [(2, 2.0, False), (4, 16.0, False), (3, 5.0, True)])
@pytest.mark.parametrize(("dtype", "tol", "rtol"), [(torch.float64, 1e-6, 1e-6), (torch.float32, 1e-5, 1e-4)])
def test_outputs_and_gradients_equal_peft(make, targets, shape, r, alpha, rslora, dtype, tol, rtol):
    """float64 shows the maths is the same (to 1e-6); float32 only adds rounding."""
    base = make().to(dtype)
    ours = add_lora(copy.deepcopy(base), targets, r=r, alpha=alpha, rslora=rslora)
    _randomize_b(ours)
    theirs = _peft_copy(base, ours, targets, r, alpha, rslora)
    x1 = torch.randn(*shape, generator=torch.Generator().manual_seed(2), dtype=dtype, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    y1, y2 = ours(x1), theirs(x2)
    torch.testing.assert_close(y1, y2, atol=tol, rtol=rtol)
    y1.square().sum().backward()
    y2.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=tol, rtol=rtol)
    for name, layer in lora_layers(ours).items():
        peft_layer = theirs.get_submodule(name)
        for ab in ("A", "B"):
            theirs_grad = getattr(peft_layer, f"lora_{ab}")["default"].weight.grad
            torch.testing.assert_close(getattr(layer, f"lora_{ab}").grad, theirs_grad, atol=tol, rtol=rtol)
    assert count_parameters(ours)[0] == sum(p.numel() for p in theirs.parameters() if p.requires_grad)


# --- merge and unmerge ------------------------------------------------------------------------

def test_merge_equals_unmerged_and_unmerge_restores():
    block = add_lora(_block(), ["q_proj", "v_proj", "fc2"], r=2)
    _randomize_b(block)
    x = torch.randn(2, 5, 8)
    w0 = block.attn.q_proj.base.weight.clone()
    adapted = block(x)
    merge_lora(block)
    assert all(m.merged for m in lora_layers(block).values())
    torch.testing.assert_close(block(x), adapted, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(block.attn.q_proj.base.weight, w0)
    unmerge_lora(block)
    torch.testing.assert_close(block.attn.q_proj.base.weight, w0, atol=1e-6, rtol=0)
    torch.testing.assert_close(block(x), adapted, atol=1e-6, rtol=1e-6)


def test_merge_twice_is_an_error_and_changes_nothing():
    block = add_lora(_block(), ["q_proj", "v_proj"], r=2)
    _randomize_b(block)
    block.attn.v_proj.merge()  # one layer merged by hand
    q_before = block.attn.q_proj.base.weight.clone()
    with pytest.raises(RuntimeError, match=r"\['attn.v_proj'\] are already merged; nothing was changed"):
        merge_lora(block)
    torch.testing.assert_close(block.attn.q_proj.base.weight, q_before, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match=r"layers \['attn.q_proj'\] are not merged"):
        unmerge_lora(block)


@pytest.mark.parametrize("fn", [merge_lora, unmerge_lora])
def test_merge_without_lora_is_an_error(fn):
    with pytest.raises(ValueError, match=r"model has no LoRALinear layers; call add_lora"):
        fn(_block())


def test_lora_state_dict_holds_only_detached_lora_tensors():
    block = add_lora(_block(), ["q_proj", "fc1"], r=2)
    sd = lora_state_dict(block)
    assert sorted(sd) == ["attn.q_proj.lora_A", "attn.q_proj.lora_B", "mlp.fc1.lora_A", "mlp.fc1.lora_B"]
    assert sd["mlp.fc1.lora_B"].shape == (12, 2) and not sd["mlp.fc1.lora_A"].requires_grad
    sd["attn.q_proj.lora_A"].zero_()
    assert block.attn.q_proj.lora_A.abs().sum() > 0  # a copy, not the live parameter
    assert sorted(lora_state_dict(LoRALinear(nn.Linear(4, 4), r=2))) == ["lora_A", "lora_B"]


def test_lora_state_dict_keeps_every_trainable_adapter_tensor_of_dora():
    from lora_lab.lora.variants import add_variant

    block = add_variant(_block(), ["q_proj", "fc1"], variant="dora", r=2)
    sd = lora_state_dict(block)
    trainable = sorted(n for n, p in block.named_parameters() if p.requires_grad)
    assert sorted(sd) == trainable and "mlp.fc1.lora_magnitude" in sd
    with torch.no_grad():
        block.mlp.fc1.lora_magnitude.mul_(2.0)  # as if trained
    assert torch.equal(lora_state_dict(block)["mlp.fc1.lora_magnitude"], block.mlp.fc1.lora_magnitude)


def test_parameter_table_rows_and_text():
    block = add_lora(_block(), ["q_proj"], r=2)
    rows = {r["module"]: r for r in parameter_table(block)}
    assert rows["attn.q_proj"] == {"module": "attn.q_proj", "kind": "LoRALinear",
                                   "shapes": "lora_A (2, 8), lora_B (8, 2)", "trainable": 32, "total": 32}
    assert rows["mlp.fc1"]["shapes"] == "weight (12, 8), bias (12,)" and rows["mlp.fc1"]["trainable"] == 0
    assert sum(r["total"] for r in rows.values()) == count_parameters(block)[1]
    text = format_parameter_table(block)
    assert text.splitlines()[0].split() == ["module", "kind", "parameters", "(shape)", "trainable", "total"]
    assert text.splitlines()[-1].split() == ["all", "32", f"{count_parameters(block)[1]:,}"]


# --- bad input --------------------------------------------------------------------------------

def test_unknown_target_lists_available_names():
    with pytest.raises(ValueError, match=r"target 'query' matches no nn.Linear in TransformerBlock; "
                                         r"available nn.Linear names: \['attn.q_proj', 'attn.k_proj'"):
        add_lora(_block(), ["q_proj", "query"])


def test_unknown_target_in_a_big_model_lists_the_last_parts():
    model = nn.Sequential(*[TransformerBlock(8, 2, d_ff=8) for _ in range(3)])
    with pytest.raises(ValueError, match=r"names end in \['fc1', 'fc2', 'k_proj', 'o_proj', 'q_proj', "
                                         r"'v_proj'\] \(18 layers, e.g. '0.attn.q_proj'\)"):
        add_lora(model, ["wq"])


def test_target_naming_a_non_linear_says_what_it_is():
    with pytest.raises(ValueError, match="'attn' matches 'attn', a MultiHeadSelfAttention, not an nn.Linear"):
        add_lora(_block(), ["attn"])


def test_multihead_attention_is_refused_with_a_reason():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16)
    with pytest.raises(ValueError, match="a MultiheadAttention, not an nn.Linear.*fused in_proj_weight"):
        add_lora(layer, ["self_attn"])
    with pytest.raises(ValueError, match="cannot adapt 'self_attn.out_proj'.*never be called"):
        add_lora(layer, ["out_proj"])
    assert all(p.requires_grad for p in layer.parameters())  # refused before anything changed
    add_lora(layer, ["linear1", "linear2"], r=2)  # its FFN is made of plain nn.Linear layers
    assert set(lora_layers(layer)) == {"linear1", "linear2"}


@pytest.mark.parametrize(("targets", "error", "match"), [
    ([], ValueError, r"targets must name at least one module \(e.g. \['q_proj', 'v_proj'\]\), got \[\]"),
    ((), ValueError, "targets must name at least one module"),
    (None, TypeError, "targets must be a list of module names such as .*got NoneType"),
    (3, TypeError, "targets must be a list of module names.*got int"),
    (["q_proj", ""], TypeError, r"targets must be non-empty strings, got \[''\]"),
    (["q_proj", 1], TypeError, r"targets must be non-empty strings, got \[1\]"),
])
def test_bad_targets(targets, error, match):
    with pytest.raises(error, match=match):
        add_lora(_block(), targets)


def test_a_string_target_is_one_name():
    assert set(lora_layers(add_lora(_block(), "v_proj", r=2))) == {"attn.v_proj"}


def test_double_wrap_is_an_error():
    block = add_lora(_block(), ["q_proj"], r=2)
    with pytest.raises(ValueError, match=r"target 'q_proj' already has LoRA at \['attn.q_proj'\]; "
                                         r"call add_lora once per module"):
        add_lora(block, ["q_proj", "v_proj"])
    assert not isinstance(block.attn.v_proj, LoRALinear)  # nothing changed
    with pytest.raises(ValueError, match=r"\('attn.q_proj.base' is inside a LoRALinear: target the adapted"):
        add_lora(block, ["q_proj.base"])


@pytest.mark.parametrize("model", [None, "model", torch.zeros(3), [nn.Linear(2, 2)]])
def test_non_module_is_an_error(model):
    with pytest.raises(TypeError, match=f"model must be an nn.Module, got {type(model).__name__}"):
        add_lora(model, ["q_proj"])


def test_model_that_is_a_linear_points_to_lora_linear():
    with pytest.raises(TypeError, match=r"model is itself an nn.Linear: wrap it directly with LoRALinear"):
        add_lora(nn.Linear(4, 4), ["weight"])


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"r": 9}, ValueError, r"r must be an integer in \[1, min\(d_in, d_out\)\]=\[1, 8\], got 9 "
                           r"\(layer 'attn.q_proj' maps d_in=8 to d_out=8\)"),
    ({"r": 0}, ValueError, r"r must be an integer in \[1, min\(d_in, d_out\)\]"),
    ({"r": 2.0}, TypeError, r"r must be an integer .* got 2.0 \(float\)"),
    ({"alpha": 0}, ValueError, "alpha must be a positive finite number, got 0"),
    ({"dropout": 1.5}, ValueError, r"dropout must be in \[0, 1\), got 1.5"),
    ({"init": "zeros"}, ValueError, r"init must be one of \['gaussian', 'kaiming'\], got 'zeros'"),
])
def test_bad_hyperparameters_change_nothing(kwargs, error, match):
    block = _block()
    with pytest.raises(error, match=match):
        add_lora(block, ["q_proj", "fc1"], **kwargs)
    assert not lora_layers(block) and all(p.requires_grad for p in block.parameters())


def test_a_failure_while_building_restores_everything(monkeypatch):
    calls = []
    real_reset = LoRALinear.reset_lora_parameters

    def flaky(self):  # runs inside LoRALinear.__init__, after the base was frozen
        calls.append(self)
        if len(calls) == 2:
            raise RuntimeError("cannot build this one")
        real_reset(self)

    monkeypatch.setattr(LoRALinear, "reset_lora_parameters", flaky)
    block = _block()
    with pytest.raises(RuntimeError, match="cannot build this one"):
        add_lora(block, ["q_proj", "v_proj"], r=2)
    assert len(calls) == 2 and all(p.requires_grad for p in block.parameters())
    assert not any(isinstance(m, LoRALinear) for m in block.modules())


def test_rank_is_checked_per_layer():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 3))
    with pytest.raises(ValueError, match=r"\[1, 3\], got 4 \(layer '1' maps d_in=16 to d_out=3\)"):
        add_lora(model, ["0", "1"], r=4)
    assert not lora_layers(model)


def test_works_on_a_bare_attention_module():
    attn = add_lora(MultiHeadSelfAttention(8, 2), ["q_proj", "k_proj", "v_proj", "o_proj"], r=1)
    assert count_parameters(attn)[0] == 4 * 1 * (8 + 8)
