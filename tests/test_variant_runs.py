"""Notebook 10's runs use the experiments' setting: `variant="lora"` prepares the experiments' LoRA model."""

import pytest
import torch

from lora_lab.lab.models import TinyViT, ViTConfig
from lora_lab.lab.runs import RunSpec, prepare
from lora_lab.lab.train import History
from lora_lab.lab.variant_runs import (
    VariantRun,
    VariantSpec,
    comparison_rows,
    format_rows,
    prepare_variant,
    quantize_body_nf4,
)
from lora_lab.lora.variants import DoRALinear
from lora_lab.maths.nf4 import nf4_roundtrip


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return TinyViT(ViTConfig(d_model=16, n_blocks=1, n_heads=2, d_ff=32))


def _trainable(model):
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def test_lora_variant_prepares_exactly_the_experiments_lora_model(base):
    ours = prepare_variant(base, VariantSpec("lora", r=2, seed=3))
    theirs = prepare(base, RunSpec(method="lora", r=2, seed=3))
    a, b = _trainable(ours), _trainable(theirs)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(k.endswith("head.weight") for k in a)


def test_dora_and_pissa_variants(base):
    dora = prepare_variant(base, VariantSpec("dora", r=2, seed=3))
    assert isinstance(dora.blocks[0].attn.q_proj, DoRALinear)
    lora = prepare_variant(base, VariantSpec("lora", r=2, seed=3))
    torch.testing.assert_close(dora.blocks[0].attn.q_proj.lora_A, lora.blocks[0].attn.q_proj.lora_A)
    pissa = prepare_variant(base, VariantSpec("pissa", r=2, seed=3))
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pissa(x), lora(x), rtol=1e-4, atol=1e-5)  # both start as base + new head


def test_nf4_base_rounds_the_body_but_not_the_head(base):
    model = prepare_variant(base, VariantSpec("lora", r=2, base="nf4"))
    q = model.blocks[0].attn.q_proj.base.weight
    torch.testing.assert_close(q, nf4_roundtrip(base.blocks[0].attn.q_proj.weight))
    assert not torch.equal(q, base.blocks[0].attn.q_proj.weight)
    head = prepare_variant(base, VariantSpec("lora", r=2)).head.weight
    assert torch.equal(model.head.weight, head)
    copy = quantize_body_nf4(TinyViT(base.config))
    assert copy.patch_embed.weight.unique().numel() <= 16  # (16, 4): 64 numbers, one block, ≤ 16 levels


def test_comparison_rows_average_over_seeds():
    def fake(variant, seed, acc):
        return VariantRun(VariantSpec(variant, seed=seed), torch.nn.Linear(2, 2),
                          History(losses=[1.0, 0.5], test_accuracy=[acc]))
    rows = comparison_rows([fake("lora", 0, 0.8), fake("lora", 1, 0.9), fake("dora", 0, 0.7)])
    assert [r["run"] for r in rows] == ["LoRA r=4", "DoRA r=4"]
    assert rows[0]["seeds"] == 2 and rows[0]["mean"] == pytest.approx(0.85) and rows[0]["max"] == 0.9
    assert rows[0]["trainable"] == 6
    text = format_rows(rows)
    assert "0.850" in text and "0.800–0.900" in text and "0.5000" in text


def test_spec_checks():
    assert VariantSpec(targets="q_proj").checked().targets == ("q_proj",)
    assert VariantSpec("rslora", r=16, base="nf4").label() == "rsLoRA r=16 (NF4 base)"
    with pytest.raises(ValueError, match="variant must be one of"):
        VariantSpec("vera").checked()
    with pytest.raises(ValueError, match="base must be one of"):
        VariantSpec(base="int8").checked()
    with pytest.raises(ValueError, match="seed must be an integer"):
        VariantSpec(seed=-1).checked()


def test_variant_run_calls_fit_exactly_as_experiments_run(monkeypatch, base):
    import lora_lab.lab.runs as experiments
    import lora_lab.lab.variant_runs as variant_runs

    calls = []

    def fake_fit(model, task, **options):
        calls.append((task.name, options))
        return History(losses=[1.0], test_accuracy=[0.5])

    for module in (experiments, variant_runs):
        monkeypatch.setattr(module, "fit", fake_fit)
        monkeypatch.setattr(module, "base_model", lambda: base)
    experiments.run(r=2, seed=7)
    variant_runs.variant_run(r=2, seed=7)
    experiments.forget_runs()
    variant_runs._RUNS.clear()
    assert len(calls) == 2 and calls[0] == calls[1]
