"""The planted low-rank task: exact Eckart–Young floors, LoRA reaching them, the α/r experiment."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from lora_lab.course.figures import TRAINED, registry  # noqa: E402
from lora_lab.lab.planted import (  # noqa: E402
    SCALING_RULES,
    eckart_young_floor,
    fit_lora,
    planted_task,
    rank_sweep,
    update_size,
)
from lora_lab.views.plots.layers import (  # noqa: E402
    plot_rank_sweep,
    plot_scaling_vs_rank,
    scaling_factors,
)


@pytest.fixture(scope="module")
def task():
    return planted_task(d=8, r_true=3, n=32, seed=1)


def test_task_is_whitened_and_planted(task):
    assert torch.allclose(task.X.t() @ task.X, 32 * torch.eye(8), atol=1e-4)
    assert torch.linalg.matrix_rank(task.delta).item() == 3
    assert torch.allclose(torch.linalg.svdvals(task.delta)[:3], task.sigma, atol=1e-5)
    assert torch.allclose(task.Y, task.X @ (task.W0 + task.delta).t())


def test_floor_is_the_loss_of_the_best_rank_r_update(task):
    U, S, Vh = torch.linalg.svd(task.delta)
    for r in range(4):
        best = U[:, :r] @ torch.diag(S[:r]) @ Vh[:r]  # (d, d): truncated SVD
        loss = (task.X @ (task.W0 + best).t() - task.Y).square().mean().item()
        assert loss == pytest.approx(eckart_young_floor(task, r), abs=1e-6)
    assert eckart_young_floor(task, 3) == eckart_young_floor(task, 8) == 0.0


def test_lora_reaches_the_floor_and_never_beats_it(task):
    losses = rank_sweep(task, [1, 2, 3, 5], lr=0.05, steps=150)
    for r, loss in losses.items():
        assert loss >= eckart_young_floor(task, r) - 1e-6  # Eckart–Young: no rank-r update does better
    assert losses[1] > 10 * losses[3] and losses[3] < 1e-4 and losses[5] < 1e-4


def test_fit_lora_trains_and_restores_threads(task):
    threads = torch.get_num_threads()
    layer, losses = fit_lora(task, 2, steps=20)
    assert torch.get_num_threads() == threads
    assert len(losses) == 20 and losses[-1] < losses[0]
    assert losses[0] == pytest.approx(task.delta.square().sum().item() / 8, rel=1e-5)  # B = 0: ΔW = 0


def test_first_adam_step_moves_every_entry_of_B_by_lr_and_leaves_A(task):
    """torch.optim.Adam's first step is lr · sign(grad) per entry: the fact 03's section 3.6 rests on."""
    (slow, _), (fast, _) = fit_lora(task, 2, steps=1, lr=0.01), fit_lora(task, 2, steps=1, lr=0.02)
    assert torch.equal(slow.lora_A, fast.lora_A)  # B = 0 at the start: A's gradient is zero, A stays put
    for layer, lr in [(slow, 0.01), (fast, 0.02)]:
        assert torch.allclose(layer.lora_B.detach().abs(), torch.full((8, 2), lr), rtol=1e-4)


def test_no_scaling_equals_alpha_over_r_when_alpha_is_r(task):
    lora = update_size(task, [2, 4], "α/r (LoRA)", alpha=4.0)
    none = update_size(task, [2, 4], "none (scaling 1)")
    assert lora[4] == pytest.approx(none[4]) and lora[2] != pytest.approx(none[2])


def test_scaling_factors():
    assert scaling_factors("α/r (LoRA)", [1, 4, 16], alpha=8) == [8.0, 2.0, 0.5]
    assert scaling_factors("α/√r (rsLoRA)", [4, 16], alpha=8) == [4.0, 2.0]
    assert scaling_factors("none (scaling 1)", [1, 64]) == [1.0, 1.0]
    assert set(SCALING_RULES) == {"α/r (LoRA)", "α/√r (rsLoRA)", "none (scaling 1)"}


def test_plots_return_figures(task):
    sizes = {"α/r (LoRA)": {1: 0.3, 2: 0.2}, "none (scaling 1)": {1: 0.1, 2: 0.2}}
    fig, (left, right) = plot_scaling_vs_rank(sizes)
    assert len(left.lines) == len(right.lines) == 2
    plt.close(fig)
    fig, ax = plot_rank_sweep({1: 0.1, 2: 1e-6}, {1: 0.1, 2: 0.0}, r_true=2)
    assert len(ax.lines) == 3 and "r* = 2" in ax.get_legend_handles_labels()[1][-1]
    plt.close(fig)
    recipes = {"lora_linear_alpha_over_r.png", "lora_linear_rank_vs_loss.png"}
    assert recipes <= set(TRAINED) and recipes <= set(registry())


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: planted_task(d=1), ValueError, r"d must be an integer in \[2, inf\], got 1"),
    (lambda: planted_task(d=8, n=4), ValueError, r"n must be an integer in \[8, inf\], got 4"),
    (lambda: planted_task(d=8, r_true=9), ValueError, r"r_true must be an integer in \[1, 8\], got 9"),
    (lambda: planted_task(seed=-1), ValueError, r"seed must be an integer in \[0, inf\], got -1"),
    (lambda: planted_task(d=8.0), TypeError, "d must be an integer, got 8.0"),
    (lambda: fit_lora(planted_task(d=4, r_true=1, n=8), 1, steps=0), ValueError, "steps must be"),
    (lambda: fit_lora(planted_task(d=4, r_true=1, n=8), 1, lr=0), ValueError, "lr must be a positive"),
    (lambda: fit_lora(planted_task(d=4, r_true=1, n=8), 5), ValueError, r"r must be .*=\[1, 4\], got 5"),
    (lambda: update_size(planted_task(d=4, r_true=1, n=8), [1], "α·r"), ValueError, "rule must be one of"),
    (lambda: scaling_factors("α·r", [1]), ValueError, "rule must be one of"),
    (lambda: eckart_young_floor(planted_task(d=4, r_true=1, n=8), -1), ValueError, "r must be"),
])
def test_bad_arguments_raise(call, error, match):
    with pytest.raises(error, match=match):
        call()
