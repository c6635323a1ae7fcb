"""The training loop is deterministic; LoRA never touches a base weight; full fine-tuning does."""

import math

import pytest
import torch

from lora_lab.lab.data import load_task
from lora_lab.lab.models import TinyViT, ViTConfig
from lora_lab.lab.random_subspace import SubspaceModel
from lora_lab.lab.runs import RunSpec, cached_run, forget_runs, prepare, run
from lora_lab.lab.train import (
    FIT_THREADS,
    TORCH_THREADS,
    _cosine,
    accuracy,
    fit,
    make_deterministic,
    optimizer_state_bytes,
)

TINY = ViTConfig(d_model=16, n_blocks=1, n_heads=2, d_ff=32)


@pytest.fixture(scope="module")
def task():
    return load_task("5-9").subset(0.1, seed=0)  # 54 real training images


def _base():
    make_deterministic(0)
    return TinyViT(TINY)


def _train(method, task, seed=0, **kw):
    model = prepare(_base(), RunSpec(method=method, seed=seed, **kw))
    return model, fit(model, task, epochs=2, lr=1e-2, batch_size=16, seed=seed)


def _base_weights(model):
    """Every pretrained tensor, by its name in the plain model (LoRA's `.base.` removed)."""
    return {n.replace(".base.", "."): p.detach().clone() for n, p in model.named_parameters()
            if "lora_" not in n and not n.startswith("head.")}


def test_same_seed_gives_identical_losses(task):
    _, first = _train("full", task, seed=3)
    _, again = _train("full", task, seed=3)
    _, other = _train("full", task, seed=4)
    assert first.losses == again.losses and first.test_accuracy == again.test_accuracy
    assert first.losses != other.losses
    assert len(first.losses) == 2 * math.ceil(len(task.x_train) / 16)


def test_lora_training_leaves_every_base_weight_bit_identical(task):
    before = _base_weights(prepare(_base(), RunSpec(method="full")))
    model, history = _train("lora", task, targets=("q_proj", "k_proj", "v_proj", "o_proj", "fc1"), r=2)
    after = _base_weights(model)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[n], before[n]) for n in before)
    assert history.losses[-1] < history.losses[0]
    assert model.blocks[0].attn.q_proj.lora_B.abs().sum() > 0  # B left zero: LoRA did train


def test_full_fine_tuning_changes_every_base_weight(task):
    before = _base_weights(prepare(_base(), RunSpec(method="full")))
    after = _base_weights(_train("full", task)[0])
    assert all(not torch.equal(after[n], before[n]) for n in before)


def test_head_only_changes_only_the_head(task):
    start = prepare(_base(), RunSpec(method="head"))
    model, history = _train("head", task)
    assert history.trainable == 16 * 5 + 5
    assert all(torch.equal(a, b) for a, b in zip(_base_weights(start).values(), _base_weights(model).values(),
                                                  strict=True))
    assert not torch.equal(start.head.weight, model.head.weight)


def test_optimizer_state_is_two_adam_moments_per_trained_parameter(task):
    for method in ["head", "lora", "full"]:
        model = prepare(_base(), RunSpec(method=method))
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
        assert optimizer_state_bytes(opt) == 0  # Adam allocates its moments at the first step
        _, history = _train(method, task)
        assert history.optimizer_state_bytes == 2 * 4 * history.trainable  # float32 m and v


def test_fit_trains_on_its_threads_and_gives_the_callers_back(task, monkeypatch):
    seen = []
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: seen.append(torch.get_num_threads()))
    torch.set_num_threads(TORCH_THREADS)
    fit(_base(), task, epochs=1, batch_size=32)
    assert set(seen) == {FIT_THREADS} == {1} and torch.get_num_threads() == TORCH_THREADS
    seen.clear()
    fit(_base(), task, epochs=1, batch_size=32, threads=2)
    assert set(seen) == {2} and torch.get_num_threads() == TORCH_THREADS
    with pytest.raises(ValueError, match="threads must be an integer in"):
        fit(_base(), task, threads=0)
    assert torch.get_num_threads() == TORCH_THREADS  # restored after a refused call too


def test_one_thread_and_two_train_alike_up_to_rounding(task):
    one = fit(prepare(_base(), RunSpec(method="full")), task, epochs=1, batch_size=16, threads=1)
    two = fit(prepare(_base(), RunSpec(method="full")), task, epochs=1, batch_size=16, threads=2)
    assert one.losses == pytest.approx(two.losses, rel=1e-4)


def test_fit_rejects_bad_arguments(task):
    frozen = _base().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit(frozen, task)
    with pytest.raises(ValueError, match="epochs must be an integer in"):
        fit(_base(), task, epochs=0)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        fit(_base(), task, lr=-1.0)


def test_cosine_schedule_ends_at_zero_and_accuracy_counts():
    assert _cosine(0, 10) == 1.0 and _cosine(5, 10) == pytest.approx(0.5) and _cosine(10, 10) == 0.0
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    assert accuracy(model, torch.rand(4, 1, 8, 8), torch.tensor([0, 0, 1, 0])) == 0.75


def test_subspace_model_starts_at_the_base_and_moves_only_along_p(task):
    base = _base().eval()
    wrapped = SubspaceModel(prepare(base, RunSpec(method="head")), d=8, seed=0)
    x = task.x_test[:5]
    assert torch.allclose(wrapped(x), prepare(base, RunSpec(method="head"))(x))
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable == {"z", "model.head.weight", "model.head.bias"}
    fit(wrapped, task, epochs=1, lr=1e-2, batch_size=16)
    z = wrapped.z.detach()
    assert z.abs().sum() > 0
    P = torch.stack([torch.zeros(8).index_put_((wrapped.index[i],), wrapped.signs[i], accumulate=True)
                     for i in range(20)])  # the first 20 rows of P, (20, 8)
    assert torch.allclose(wrapped.offset()[:20], P @ z, atol=1e-6)
    with pytest.raises(ValueError, match="d must be an integer in"):
        SubspaceModel(base, d=0)


def test_run_spec_checks_and_labels():
    assert RunSpec(method="lora", targets="q_proj", r=8).checked().label() == "LoRA q r=8"
    assert RunSpec(method="subspace", d=64).label() == "subspace d=64"
    assert RunSpec(fraction=0.1, epochs=5).total_epochs == 50
    with pytest.raises(ValueError, match="method must be one of"):
        RunSpec(method="adapter").checked()
    with pytest.raises(ValueError, match="fraction must be in"):
        RunSpec(fraction=0.0).checked()


def test_runs_are_remembered_and_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("LORA_LAB_CACHE", str(tmp_path))
    forget_runs()
    spec = RunSpec(method="lora", r=1, epochs=1, fraction=0.1)
    first = cached_run(spec)
    assert run(spec) is first
    assert len(list((tmp_path / "runs").glob("*.safetensors"))) == 1
    forget_runs()
    loaded = cached_run(spec)  # from disk, not retrained
    assert loaded is not first and loaded.history.losses == first.history.losses
    A1 = first.model.blocks[1].attn.v_proj.lora_A
    assert torch.equal(loaded.model.blocks[1].attn.v_proj.lora_A, A1)
    x = load_task("5-9").x_test[:8]
    assert torch.equal(loaded.model(x), first.model(x))
    forget_runs()


def test_scoring_less_often_leaves_training_unchanged(task):
    runs = {}
    for every in (1, 2):
        model = prepare(_base(), RunSpec(method="lora", r=1))
        runs[every] = fit(model, task, epochs=5, lr=1e-2, batch_size=16, eval_every=every)
    assert runs[1].eval_epochs == [1, 2, 3, 4, 5] and runs[2].eval_epochs == [2, 4, 5]
    assert runs[2].losses == runs[1].losses
    assert runs[2].test_accuracy == [runs[1].test_accuracy[i] for i in (1, 3, 4)]
    with pytest.raises(ValueError, match="eval_every must be an integer in"):
        fit(model, task, eval_every=0)


def test_keep_head_reuses_the_frozen_pretrained_head():
    base = _base()
    model = prepare(base, RunSpec(method="lora", task="0-4 mirrored", keep_head=True))
    assert torch.equal(model.head.weight, base.head.weight) and model.head.weight is not base.head.weight
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # an adapter file alone holds all of it
    full = prepare(base, RunSpec(method="full", task="0-4 mirrored", keep_head=True))
    assert all(p.requires_grad for p in full.parameters())
    with pytest.raises(ValueError, match="keep_head=True needs a task with the pretraining digits"):
        RunSpec(method="lora", task="5-9", keep_head=True).checked()
    with pytest.raises(ValueError, match="a method other than 'head'"):
        RunSpec(method="head", task="0-4", keep_head=True).checked()
