"""The value checkers' rarer message paths (LoRA+'s groups, a known mistake tested late, a
learner's function that changes between calls), each asserted on its English twin, in English and
in Chinese."""

import numpy as np
import pytest
import torch

from lora_lab.course.exercises import experiments, since2021
from lora_lab.course.exercises.experiments import check_train_lora
from lora_lab.course.exercises.lowrank import check_factors_for_budget
from lora_lab.course.exercises.since2021 import check_count_intruders, check_lora_plus_groups, check_lr_ratio
from lora_lab.course.exercises.start import check_factor_params
from lora_lab.course.exercises.variants import _nf4_reference, check_pissa_init, check_quantize_block

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _groups(model, lr, ratio, rate_of_b=None):
    """LoRA+'s groups: every trainable lora_B at lr·ratio (or `rate_of_b`), the rest at lr."""
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    b = [p for n, p in trainable if "lora_B" in n]
    rest = [p for n, p in trainable if "lora_B" not in n]
    return [{"params": rest, "lr": lr}, {"params": b, "lr": lr * ratio if rate_of_b is None else rate_of_b}]


def _one_over(model, lr, ratio):
    return _groups(model, lr, ratio, rate_of_b=lr * ratio * (ratio - 1) / (ratio - 1))


@pytest.mark.parametrize(("fn", "hidden", "fragment"), [
    (lambda m, lr, ratio: _groups(m, lr, ratio) + [{"params": [torch.zeros(1)], "lr": lr}], False,
     "a group holds a tensor that is not a parameter of the model"),
    (lambda m, lr, ratio: [{"params": list(m.parameters())}], False, "every group needs a 'params' list"),
    (lambda m, lr, ratio: _groups(m, 2 * lr, ratio), False,
     "case q_proj, v_proj and a head: q_proj.lora_A gets lr 0.002, expected 0.001 (lr=0.001, ratio=16)"),
    (lambda m, lr, ratio: _groups(m, lr, ratio) + [{"params": [m.head.weight], "lr": lr}], False,
     "head.weight is in two groups"),
    (lambda m, lr, ratio: _groups(m, lr, 16.0), False, "case the same model: "),
    (_one_over, True, "hidden case ratio 1: one rate for every parameter: your function raised "
                      "ZeroDivisionError"),
])
def test_lora_plus_groups_names_what_went_wrong(lang, fn, hidden, fragment):
    assert check_lora_plus_groups(_groups, show=False, hidden=True).passed
    result = check_lora_plus_groups(fn, show=False, hidden=hidden)
    assert not result.passed and fragment in lang.en(result.message), lang.en(result.message)


def test_lr_ratio_names_dividing_the_positions(lang):
    result = check_lr_ratio(lambda fl, fs, ll, ls: float(np.argmin(ls) / max(np.argmin(fs), 1)), show=False)
    assert "divide the learning rates at the best positions" in lang.en(result.message)


def test_count_intruders_names_counting_beyond_the_top_k(lang):
    result = check_count_intruders(lambda W0, W, k, e: since2021._count(W0, W, k, e, top=False), show=False)
    assert "only the top-k singular vectors of W count" in lang.en(result.message)


def test_factors_for_budget_names_a_rank_from_the_matrix_size(lang):
    def from_matrix_size(M, k):
        # right on the first case (there the 2·r·n slip gives the same r and its hint comes first),
        # the m·n slip from the second case on
        m, n = M.shape
        r = min(k // (m + n), m, n) if (m, n) == (4, 10) else min(k // (m * n) + 1, m, n)
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        return U[:, :r] * S[:r], Vt[:r]

    result = check_factors_for_budget(from_matrix_size)
    assert "r comes from the factors' size r·(m + n)" in lang.en(result.message)


def test_factor_params_names_the_size_of_the_product(lang):
    result = check_factor_params(lambda o, i, r: (o * i, r * i * o))
    assert "r · d_in · d_out is the size of B @ A" in lang.en(result.message)


def test_quantize_block_names_a_mean_scale(lang):
    result = check_quantize_block(lambda w, lv: _nf4_reference(w, lv) / w.abs().max() * w.abs().mean())
    assert "the scale is the block's largest |w| (absmax)" in lang.en(result.message)


def test_pissa_init_names_a_wrong_shape(lang):
    def tall_A(W0, r, s):
        return torch.zeros(r + 1, W0.shape[1]), torch.zeros(W0.shape[0], r), W0

    result = check_pissa_init(tall_A)
    assert "A must have shape (2, 8) (W0 is (6, 8), r=2), got (3, 8)" in lang.en(result.message)
    assert "swap" not in lang.en(result.message)


def test_train_lora_names_a_loss_that_did_not_fall(lang):
    calls = []

    def changes_its_mind(model, x, y, steps, lr):
        calls.append(1)
        losses = experiments.reference_train(model, x, y, steps, lr)
        return losses if len(calls) <= 3 else losses[::-1]  # the checker's fourth call: the base check

    result = check_train_lora(changes_its_mind, show=False)
    assert not result.passed and "the loss did not fall (" in lang.en(result.message), lang.en(result.message)
