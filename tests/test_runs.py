"""One run system: LoRA's variants, an NF4 base, LoRA+, MLP targets and full fine-tuning all go
through `RunSpec`/`run`, and one on-disk cache that a truncated entry cannot crash."""

import pytest
import torch

import lora_lab.lab.runs as runs
from lora_lab.lab.models import TinyViT, ViTConfig, quantize_body_nf4
from lora_lab.lab.readouts import comparison_rows, format_rows, trained_weight
from lora_lab.lab.runs import Run, RunSpec, cached_run, fit_options, forget_runs, prepare, run_path
from lora_lab.lab.train import History
from lora_lab.lora.fused import FusedLoRALinear
from lora_lab.lora.variants import DoRALinear
from lora_lab.maths.nf4 import nf4_roundtrip


@pytest.fixture(scope="module")
def base():
    torch.manual_seed(0)
    return TinyViT(ViTConfig(d_model=16, n_blocks=1, n_heads=2, d_ff=32))


@pytest.fixture
def tiny_runs(base, tmp_path, monkeypatch):
    """Runs on the tiny base, cached under tmp_path; counts the trainings."""
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    monkeypatch.setattr(runs, "base_model", lambda: base)
    calls = []
    real_fit = runs.fit

    def counting_fit(model, task, **options):
        calls.append(options)
        return real_fit(model, task, **options)

    monkeypatch.setattr(runs, "fit", counting_fit)
    forget_runs()
    yield calls
    forget_runs()


def test_lora_is_fused_and_variants_change_only_the_layer(base):
    lora = prepare(base, RunSpec(r=2, seed=3))
    assert type(lora.blocks[0].attn.q_proj) is FusedLoRALinear
    dora = prepare(base, RunSpec(r=2, seed=3, variant="dora"))
    assert isinstance(dora.blocks[0].attn.q_proj, DoRALinear)
    torch.testing.assert_close(dora.blocks[0].attn.q_proj.lora_A, lora.blocks[0].attn.q_proj.lora_A)
    assert any(n.endswith("lora_magnitude") for n, p in dora.named_parameters() if p.requires_grad)
    pissa = prepare(base, RunSpec(r=2, seed=3, variant="pissa"))
    x = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(pissa(x), lora(x), rtol=1e-4, atol=1e-5)  # both start as base + new head
    assert prepare(base, RunSpec(r=2, variant="rslora")).blocks[0].attn.q_proj.scaling == 8 / 2 ** 0.5


def test_nf4_base_rounds_the_body_but_not_the_head(base):
    model = prepare(base, RunSpec(r=2, base="nf4"))
    q = model.blocks[0].attn.q_proj.base.weight
    torch.testing.assert_close(q, nf4_roundtrip(base.blocks[0].attn.q_proj.weight))
    assert not torch.equal(q, base.blocks[0].attn.q_proj.weight)
    assert torch.equal(model.head.weight, prepare(base, RunSpec(r=2)).head.weight)
    copy = quantize_body_nf4(TinyViT(base.config))
    assert copy.patch_embed.weight.unique().numel() <= 16  # (16, 4): 64 numbers, one block, ≤ 16 levels


def test_lora_plus_gives_every_lora_b_its_own_rate():
    assert "lora_B" not in fit_options(RunSpec())["lr_by_name"]
    options = fit_options(RunSpec(lora_plus_ratio=16, lr=1e-3))
    assert options["lr_by_name"] == {"head.": runs.LR["head"], "lora_B": pytest.approx(16e-3)}
    assert options["lr"] == 1e-3
    assert RunSpec(lora_plus_ratio=16).label() == "LoRA q,v r=4 LoRA+ ×16"


def test_lora_plus_moves_b_faster_in_a_real_step(tiny_runs):
    def b_norm(ratio):
        model = cached_run(r=2, epochs=1, fraction=0.05, lora_plus_ratio=ratio).model
        return model.blocks[0].attn.q_proj.lora_B.norm().item()

    assert b_norm(8.0) > 2 * b_norm(1.0)  # B starts at 0: its size after training follows its rate


def test_mlp_targets_and_labels(base):
    model = prepare(base, RunSpec(targets=("fc1", "fc2"), r=2))
    mlp = model.blocks[0].mlp
    assert type(mlp.fc1) is FusedLoRALinear and type(mlp.fc2) is FusedLoRALinear
    assert RunSpec(targets=("fc1", "fc2")).label() == "LoRA fc1,fc2 r=4"
    assert RunSpec(variant="dora", base="nf4").label() == "DoRA q,v r=4 (NF4 base)"


def test_full_fine_tuning_weights_come_back_from_the_cache(tiny_runs, base):
    first = cached_run(method="full", epochs=1, fraction=0.05)
    W = trained_weight(first, 0, "fc1")
    assert not torch.equal(torch.from_numpy(W).float(), base.blocks[0].mlp.fc1.weight)
    forget_runs()
    loaded = cached_run(method="full", epochs=1, fraction=0.05)
    assert len(tiny_runs) == 1 and loaded is not first  # read from disk, not retrained
    assert (trained_weight(loaded, 0, "fc1") == W).all()
    lora = cached_run(r=2, epochs=1, fraction=0.05)
    m = lora.model.blocks[0].attn.q_proj
    expected = (m.base.weight + m.delta_weight()).detach().double().numpy()
    assert (trained_weight(lora, 0, "q_proj") == expected).all()


def test_a_truncated_cache_entry_is_retrained_and_overwritten(tiny_runs):
    spec = RunSpec(r=2, epochs=1, fraction=0.05)
    first = cached_run(spec)
    path = run_path(spec)
    path.write_bytes(path.read_bytes()[:100])  # what a kernel killed during a save would leave
    forget_runs()
    with pytest.warns(UserWarning, match="unreadable cached run .*: retraining it"):
        again = cached_run(spec)
    assert len(tiny_runs) == 2 and again.history.losses == first.history.losses
    forget_runs()
    third = cached_run(spec)  # the overwritten entry reads back
    assert len(tiny_runs) == 2 and third.history.losses == first.history.losses
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]


def test_spec_checks():
    assert RunSpec(targets="q_proj").checked().targets == ("q_proj",)
    with pytest.raises(ValueError, match="variant must be one of"):
        RunSpec(variant="vera").checked()
    with pytest.raises(ValueError, match="base must be one of"):
        RunSpec(base="int8").checked()
    with pytest.raises(ValueError, match="lora_plus_ratio must be a positive"):
        RunSpec(lora_plus_ratio=0.0).checked()
    with pytest.raises(ValueError, match="variant, base apply to method='lora' only"):
        RunSpec(method="full", variant="dora", base="nf4").checked()
    with pytest.raises(ValueError, match="r must be an integer"):
        RunSpec(r=0).checked()
    with pytest.raises(ValueError, match="lr must be a positive"):
        RunSpec(lr=-1.0).checked()


def test_comparison_rows_average_over_seeds():
    def fake(variant, seed, acc):
        return Run(RunSpec(variant=variant, seed=seed), torch.nn.Linear(2, 2),
                   History(losses=[1.0, 0.5], test_accuracy=[acc], trainable=6))
    rows = comparison_rows([fake("lora", 0, 0.8), fake("lora", 1, 0.9), fake("dora", 0, 0.7)])
    assert [r["run"] for r in rows] == ["LoRA q,v r=4", "DoRA q,v r=4"]
    assert rows[0]["seeds"] == 2 and rows[0]["mean"] == pytest.approx(0.85) and rows[0]["max"] == 0.9
    assert rows[0]["trainable"] == 6
    text = format_rows(rows)
    assert "0.850" in text and "0.800–0.900" in text and "0.5000" in text
