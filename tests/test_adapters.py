"""Adapter files: exact round trips, refusals that name the bad key, no pickle, PEFT compatibility."""

import copy
import json
import pickle
import struct

import pytest
import torch
from torch import nn

import lora_lab.lora.adapters as adapters_module
from lora_lab.lora.adapters import (
    compare_fingerprints,
    export_peft,
    file_kib,
    fingerprint,
    load_adapter,
    peft_targets,
    read_adapter,
    save_adapter,
)
from lora_lab.lora.attention import TransformerBlock
from lora_lab.lora.inject import add_lora, lora_layers, merge_lora, unmerge_lora

D = 8


def make_base(seed: int = 0, d: int = D) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(TransformerBlock(d, 2, 2 * d), TransformerBlock(d, 2, 2 * d), nn.Linear(d, 3)).eval()


def trained(base: nn.Module, targets=("q_proj", "v_proj"), r: int = 2, alpha: float = 4.0, seed: int = 1,
            **kw) -> nn.Module:
    """A LoRA copy of `base` with random (non-zero) B, as if trained."""
    model = add_lora(copy.deepcopy(base), list(targets), r=r, alpha=alpha, **kw)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.lora_B.copy_(torch.randn(layer.lora_B.shape, generator=gen))
    return model.eval()


@pytest.fixture
def x():
    return torch.randn(3, 5, D, generator=torch.Generator().manual_seed(2))


def _saved(tmp_path, make, name: str):
    """(base, adapted model made by `make(base)`, path of its saved adapter)."""
    base = make_base()
    model = make(base)
    path = tmp_path / name
    save_adapter(model, path)
    return base, model, path


@pytest.fixture
def saved(tmp_path):
    return _saved(tmp_path, trained, "task.safetensors")


def test_round_trip_is_exact_onto_a_fresh_base(saved, x):
    base, model, path = saved
    loaded = load_adapter(copy.deepcopy(base), path)
    assert sorted(lora_layers(loaded)) == sorted(lora_layers(model))
    for name, layer in lora_layers(model).items():
        assert torch.equal(lora_layers(loaded)[name].lora_A, layer.lora_A)
        assert torch.equal(lora_layers(loaded)[name].lora_B, layer.lora_B)
    assert torch.equal(loaded(x), model(x))


def test_round_trip_into_a_model_that_already_has_lora(saved, x):
    base, model, path = saved
    other = trained(base, seed=7)
    assert not torch.equal(other(x), model(x))
    load_adapter(other, path)
    assert torch.equal(other(x), model(x))


def test_round_trip_keeps_r_alpha_rslora_and_dropout(tmp_path, x):
    base = make_base()
    model = trained(base, r=3, alpha=5.0, rslora=True, dropout=0.1)
    save_adapter(model, tmp_path / "a.safetensors")
    loaded = load_adapter(copy.deepcopy(base), tmp_path / "a.safetensors").eval()
    layer = next(iter(lora_layers(loaded).values()))
    assert (layer.r, layer.alpha, layer.rslora, layer.dropout.p) == (3, 5.0, True, 0.1)
    assert torch.equal(loaded(x), model(x))


def test_files_hold_only_lora_tensors_and_a_small_json(saved):
    _, model, path = saved
    tensors, config = read_adapter(path)
    assert set(tensors) == {f"{n}.{p}" for n in lora_layers(model) for p in ("lora_A", "lora_B")}
    assert {config[k] for k in ("r", "alpha", "scaling")} == {2, 4.0, "alpha/r"}
    assert config["targets"] == sorted(lora_layers(model))
    assert "0.attn.q_proj.weight" in config["base"]  # the base's names, as before LoRA
    assert not any(".base." in k for k in config["base"])


def test_safetensors_file_is_header_plus_raw_bytes_no_pickle(saved):
    """Every byte is either the JSON header or tensor data: there is no room for a pickle."""
    _, _, path = saved
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    spans = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
    assert spans[0][0] == 0 and spans[-1][1] == len(raw) - 8 - n
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert not raw.startswith((b"PK", b"\x80"))  # neither torch.save's zip nor a bare pickle
    json.loads(path.with_suffix(".json").read_text())  # the config is plain JSON


def test_loading_never_unpickles(saved, monkeypatch):
    base, _, path = saved

    def refuse(*args, **kwargs):
        raise AssertionError("pickle or torch.load was called")

    for target, name in ((torch, "load"), (pickle, "load"), (pickle, "loads")):
        monkeypatch.setattr(target, name, refuse)
    load_adapter(copy.deepcopy(base), path)
    source = open(adapters_module.__file__).read()
    assert "torch.load" not in source and "import pickle" not in source


def test_other_targets_are_refused_naming_the_layer(saved):
    base, _, path = saved
    other = add_lora(copy.deepcopy(base), ["q_proj", "k_proj"], r=2, alpha=4.0)
    with pytest.raises(ValueError, match=r"targets differ: .*'0\.attn\.k_proj'"):
        load_adapter(other, path)


def test_other_rank_is_refused_naming_the_tensor(saved):
    base, _, path = saved
    other = add_lora(copy.deepcopy(base), ["q_proj", "v_proj"], r=4, alpha=4.0)
    with pytest.raises(ValueError, match=r"0\.attn\.q_proj\.lora_A has shape \(2, 8\) .* needs \(4, 8\)"):
        load_adapter(other, path)


def test_other_shapes_are_refused_naming_the_tensor(saved):
    _, _, path = saved
    with pytest.raises(ValueError, match=r"0\.attn\.q_proj\.lora_A has shape \(2, 8\) .* needs \(2, 16\)"):
        load_adapter(make_base(d=16), path)


def test_another_base_is_refused_naming_the_first_bad_key(saved):
    _, _, path = saved
    with pytest.raises(ValueError, match=r"not the base .* '0\.attn\.q_proj\.weight' differs"):
        load_adapter(make_base(seed=5), path)


def test_a_changed_head_is_refused_naming_it(saved):
    base, _, path = saved
    other = copy.deepcopy(base)
    with torch.no_grad():
        other[2].weight[0, 0] += 0.5
    with pytest.raises(ValueError, match=r"'2\.weight' differs"):
        load_adapter(other, path)


def test_a_refused_load_leaves_the_model_unchanged(saved):
    _, _, path = saved
    other = make_base(seed=5)
    with pytest.raises(ValueError, match="not the base"):
        load_adapter(other, path)
    assert not lora_layers(other)


def test_merge_then_unmerge_drift_is_tolerated(saved, x):
    """W0 + ΔW - ΔW is not bit-identical to W0; the fingerprint allows for it, a hash alone would not."""
    base, model, path = saved
    other = trained(base, seed=9)
    merge_lora(other)
    unmerge_lora(other)
    drifted = other[0].attn.q_proj.base.weight
    assert not torch.equal(drifted, base[0].attn.q_proj.weight)
    load_adapter(other, path)
    torch.testing.assert_close(other(x), model(x), rtol=1e-5, atol=1e-6)


def test_bfloat16_drift_is_tolerated_and_another_base_still_refused(tmp_path):
    """bfloat16 rounds far more than float32: the tolerance widens with the dtype's eps (4·eps)."""
    base = make_base().to(torch.bfloat16)
    save_adapter(trained(base), tmp_path / "a.safetensors")
    other = trained(base, seed=4)
    merge_lora(other)
    unmerge_lora(other)
    assert not torch.equal(other[0].attn.q_proj.base.weight, base[0].attn.q_proj.weight)
    load_adapter(other, tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match=r"'0\.attn\.q_proj\.weight' differs"):
        load_adapter(make_base(seed=5).to(torch.bfloat16), tmp_path / "a.safetensors")


def test_fingerprints_of_equal_and_different_bases():
    assert compare_fingerprints(fingerprint(make_base()), fingerprint(make_base())) is None
    assert "differs" in compare_fingerprints(fingerprint(make_base()), fingerprint(make_base(seed=3)))
    small, big = fingerprint(make_base()), fingerprint(make_base(d=16))
    assert "has shape" in compare_fingerprints(small, big)
    extra = {**small, "extra.weight": small["2.weight"]}
    assert "not in this model" in compare_fingerprints(extra, small)
    assert "not in the adapter's base" in compare_fingerprints(small, extra)


def test_merged_models_are_refused(saved, tmp_path):
    base, model, path = saved
    merge_lora(model)
    with pytest.raises(ValueError, match="cannot save an adapter from a merged model .* unmerge_lora"):
        save_adapter(model, tmp_path / "b.safetensors")
    with pytest.raises(ValueError, match="cannot fingerprint a merged model"):
        fingerprint(model)
    with pytest.raises(ValueError, match="cannot load an adapter into a merged model"):
        load_adapter(model, path)


@pytest.mark.parametrize(("path", "error", "match"), [
    (42, TypeError, "path must be a str or a path, got int"),
    ("adapter.bin", ValueError, "path must end with '.safetensors'"),
])
def test_bad_paths(saved, path, error, match):
    _, model, _ = saved
    with pytest.raises(error, match=match):
        save_adapter(model, path)


def test_bad_inputs(tmp_path, saved):
    base, _, path = saved
    with pytest.raises(TypeError, match="model must be an nn.Module, got str"):
        save_adapter("model", tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match="no LoRALinear layers"):
        save_adapter(base, tmp_path / "a.safetensors")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_adapter(copy.deepcopy(base), tmp_path / "missing.safetensors")
    path.with_suffix(".json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="is not a lora_lab.adapter v1 config, got format='other'"):
        read_adapter(path)


def test_mixed_ranks_are_refused_naming_the_layer(tmp_path):
    model = add_lora(make_base(), ["q_proj"], r=2)
    add_lora(model, ["v_proj"], r=4)
    with pytest.raises(ValueError, match=r"share r, alpha.*'0\.attn\.v_proj' has \(4,"):
        save_adapter(model, tmp_path / "a.safetensors")


def test_tampered_tensor_file_is_refused(saved):
    from safetensors.torch import load_file, save_file

    base, _, path = saved
    tensors = load_file(str(path))
    tensors.pop("0.attn.q_proj.lora_B")
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"'0\.attn\.q_proj\.lora_B' is missing or extra"):
        load_adapter(copy.deepcopy(base), path)


def test_adapter_is_much_smaller_than_the_model(saved, tmp_path):
    from safetensors.torch import save_file

    _, model, path = saved
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp_path / "full.safetensors"))
    assert file_kib(path) * 4 < file_kib(tmp_path / "full.safetensors")


def test_other_alpha_is_refused_naming_the_layer(saved):
    base, _, path = saved
    other = add_lora(copy.deepcopy(base), ["q_proj", "v_proj"], r=2, alpha=8.0)
    with pytest.raises(ValueError, match=r"'0\.attn\.q_proj' has alpha=8 \(alpha/r\), .* alpha=4"):
        load_adapter(other, path)


# ---- PEFT ------------------------------------------------------------------------------------

@pytest.fixture
def peft():
    return pytest.importorskip("peft")


ALL_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "fc1")


@pytest.mark.parametrize("kw", [{}, {"rslora": True}, {"targets": ALL_LINEARS}])
def test_exported_adapter_loads_in_peft_with_equal_outputs(tmp_path, x, kw, peft):
    base = make_base()
    model = trained(base, **kw)
    export_peft(model, tmp_path / "peft")
    assert sorted(p.name for p in (tmp_path / "peft").iterdir()) == ["adapter_config.json",
                                                                    "adapter_model.safetensors"]
    loaded = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "peft").eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(base(x), model(x), atol=1e-3)  # the adapter really changes the output


def test_exported_keys_and_config_follow_peft(tmp_path, peft):
    from safetensors.torch import load_file

    model = trained(make_base())
    export_peft(model, tmp_path)
    keys = sorted(load_file(str(tmp_path / "adapter_model.safetensors")))
    assert keys[:2] == ["base_model.model.0.attn.q_proj.lora_A.weight",
                        "base_model.model.0.attn.q_proj.lora_B.weight"]
    config = peft.PeftConfig.from_pretrained(tmp_path)
    assert (config.r, config.lora_alpha, set(config.target_modules)) == (2, 4.0, {"q_proj", "v_proj"})


def test_peft_saved_adapter_matches_ours_key_for_key(tmp_path, peft):
    """PEFT's own save_pretrained writes the same keys and shapes as export_peft."""
    from safetensors.torch import load_file

    base = make_base()
    ours = trained(base)
    export_peft(ours, tmp_path / "ours")
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(r=2, lora_alpha=4,
                                                                       target_modules=["q_proj", "v_proj"]))
    theirs.save_pretrained(tmp_path / "theirs")
    a = load_file(str(tmp_path / "ours" / "adapter_model.safetensors"))
    b = load_file(str(tmp_path / "theirs" / "adapter_model.safetensors"))
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}


def test_peft_targets_fall_back_to_full_names_when_leaves_select_too_much():
    model = add_lora(make_base(), ["0.attn.q_proj"], r=2)
    targets = peft_targets(model)
    assert isinstance(targets, str)
    import re

    assert re.fullmatch(targets, "0.attn.q_proj") and not re.fullmatch(targets, "1.attn.q_proj")
    assert peft_targets(add_lora(make_base(), ["q_proj"], r=2)) == ["q_proj"]


def test_export_peft_bad_directory():
    with pytest.raises(TypeError, match="directory must be a str or a path, got int"):
        export_peft(trained(make_base()), 3)



# ---- DoRA: the trained magnitude travels with A and B ----------------------------------------

def trained_dora(base: nn.Module, seed: int = 3, **kw) -> nn.Module:
    """A DoRA copy of `base` with random B and a magnitude moved off ‖W0‖, as if trained."""
    from lora_lab.lora.variants import DoRALinear

    model = trained(base, seed=seed, **kw)
    gen = torch.Generator().manual_seed(seed + 1)
    for name, layer in lora_layers(model).items():
        dora = DoRALinear.from_lora(layer)
        with torch.no_grad():
            dora.lora_magnitude.mul_(1 + 0.5 * torch.rand(dora.lora_magnitude.shape, generator=gen))
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, dora)
    return model.eval()


@pytest.fixture
def saved_dora(tmp_path):
    return _saved(tmp_path, trained_dora, "dora.safetensors")


def test_dora_round_trip_is_exact_and_keeps_the_magnitude(saved_dora, x):
    from lora_lab.lora.variants import DoRALinear

    base, model, path = saved_dora
    tensors, config = read_adapter(path)
    assert config["variant"] == "dora"
    assert sorted(k.rpartition(".")[2] for k in tensors if k.startswith("0.attn.q_proj.")) == \
        ["lora_A", "lora_B", "lora_magnitude"]
    assert tensors["0.attn.q_proj.lora_magnitude"].shape == (D,)
    loaded = load_adapter(copy.deepcopy(base), path).eval()
    assert all(isinstance(layer, DoRALinear) for layer in lora_layers(loaded).values())
    assert torch.equal(loaded(x), model(x))
    # without its magnitude the same A and B compute something else: it must be saved
    plain = trained(base, seed=3)
    assert not torch.allclose(plain(x), model(x), atol=1e-3)


def test_plain_lora_config_has_no_variant_key(saved):
    _, _, path = saved
    assert "variant" not in json.loads(path.with_suffix(".json").read_text())
    assert read_adapter(path)[1]["variant"] == "lora"  # read as LoRA, as before DoRA existed


def test_dora_and_lora_do_not_load_into_each_other(saved, saved_dora):
    base, _, lora_path = saved
    _, dora_model, dora_path = saved_dora
    with pytest.raises(ValueError, match=r"the adapter is 'dora', the model's layers are 'lora'"):
        load_adapter(trained(base), dora_path)
    with pytest.raises(ValueError, match=r"the adapter is 'lora', the model's layers are 'dora'"):
        load_adapter(copy.deepcopy(dora_model), lora_path)


def test_a_mix_of_dora_and_lora_layers_is_refused(tmp_path):
    from lora_lab.lora.variants import DoRALinear

    model = trained(make_base())
    model[0].attn.q_proj = DoRALinear.from_lora(model[0].attn.q_proj)
    with pytest.raises(ValueError, match=r"one kind of layer: '0.attn.q_proj' is DoRA, '0.attn.v_proj' is"):
        save_adapter(model, tmp_path / "mixed.safetensors")


def test_a_dora_adapter_missing_its_magnitude_is_refused(saved_dora):
    from safetensors.torch import load_file, save_file

    base, _, path = saved_dora
    tensors = load_file(str(path))
    del tensors["1.attn.v_proj.lora_magnitude"]
    save_file(tensors, str(path))
    with pytest.raises(ValueError, match=r"'1.attn.v_proj.lora_magnitude' is missing or extra"):
        load_adapter(copy.deepcopy(base), path)


def test_exported_dora_adapter_loads_in_peft_with_equal_outputs(tmp_path, x, peft):
    from safetensors.torch import load_file

    base = make_base()
    model = trained_dora(base)
    export_peft(model, tmp_path / "peft")
    config = json.loads((tmp_path / "peft" / "adapter_config.json").read_text())
    assert config["use_dora"] is True
    assert "base_model.model.0.attn.q_proj.lora_magnitude_vector" in load_file(
        str(tmp_path / "peft" / "adapter_model.safetensors"))
    loaded = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "peft").eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-5)
    theirs = peft.get_peft_model(copy.deepcopy(base), peft.LoraConfig(
        r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], use_dora=True))
    theirs.save_pretrained(tmp_path / "theirs")
    ours, peft_own = (load_file(str(tmp_path / d / "adapter_model.safetensors")) for d in ("peft", "theirs"))
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in peft_own.items()}
