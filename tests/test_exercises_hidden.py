"""Wave 2 checkers of 00, 01, 02, 05 and 06: each accepts its reference, with the hidden cases too,
and rejects known-wrong answers (or answers that pass only the visible cases) with a message that
teaches; a learner's crash, NaN or stub becomes a message."""

import numpy as np
import pytest
import torch

from lora_lab.course.exercises import NOT_DONE, start
from lora_lab.course.exercises import budget as bud
from lora_lab.course.exercises import experiments as exp
from lora_lab.course.exercises import lowrank as low

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese

REFERENCES = {
    start.check_factor_params: lambda o, i, r: (o * i, r * (o + i)),
    bud.check_task_storage: lambda n, m, a: (n * m, m + n * a),
    bud.check_lora_params: lambda n, s, r: n * sum(r * (o + i) for o, i in s),
    bud.check_adapter_megabytes: lambda n, b: n * b / 1e6,
    bud.check_training_bytes: lambda n, t, w, g, s: n * w + t * (g + s),
    bud.check_lora_share: lambda s, n, t, r, tot: (n * r * sum(sum(s[k]) for k in t),
                                                   100 * n * r * sum(sum(s[k]) for k in t) / tot),
    low.check_best_rank_r: lambda M, r: low._svd_approx(M, r),
    low.check_compression_ratio: lambda m, n, r: m * n / (r * (m + n)),
    low.check_rank_for_energy: low._rank_for,
    exp.check_lora_trainable: lambda b, d, t, r, c: b * t * 2 * r * d + (d + 1) * c,
    exp.check_adam_state_bytes: lambda n, b: 2 * n * b,
}


def _factors(M, max_numbers):
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    r = min(max_numbers // sum(M.shape), *M.shape)
    return U[:, :r] * S[:r], Vt[:r]


@pytest.mark.parametrize("checker", REFERENCES, ids=lambda c: c.__name__)
def test_reference_passes_visible_and_hidden(checker):
    assert checker(REFERENCES[checker]).passed
    result = checker(REFERENCES[checker], hidden=True)
    assert result.passed and result.hidden >= 3 and result.total > checker(REFERENCES[checker]).total


@pytest.mark.parametrize("checker", REFERENCES, ids=lambda c: c.__name__)
def test_visible_cases_only_fail_the_hidden_ones(checker):
    """A lookup table of the visible cases passes them and fails the hidden ones, with partial credit."""
    seen = []
    checker(lambda *a: seen.append(a) or REFERENCES[checker](*a))

    def table(*args):
        for known in seen:
            if all(np.array_equal(np.asarray(x, dtype=object), np.asarray(y, dtype=object))
                   if not isinstance(x, (np.ndarray, dict)) else (x is y or str(x) == str(y))
                   for x, y in zip(known, args, strict=True)):
                return REFERENCES[checker](*args)
        return 0.0

    assert checker(table).passed
    hidden = checker(table, hidden=True)
    assert not hidden.passed and 0 < hidden.cases < hidden.total


@pytest.mark.parametrize("checker", [*REFERENCES, low.check_factors_for_budget, exp.check_train_lora],
                         ids=lambda c: c.__name__)
def test_stub_crash_and_nan_become_messages(lang, checker):
    def stub(*args):
        raise NotImplementedError()

    def crash(*args):
        raise ZeroDivisionError("oops")

    assert NOT_DONE in lang.en(checker(stub, hidden=True).message)
    assert "ZeroDivisionError" in lang.en(checker(crash).message)
    nan = checker(lambda *a: float("nan"))
    assert not nan.passed and nan.cases == 0


def test_factors_for_budget(lang):
    assert low.check_factors_for_budget(_factors, hidden=True).passed
    # any valid factorisation passes: U_r and Σ_r V_rᵀ
    alt = low.check_factors_for_budget(lambda M, k: (_factors(M, k)[0] / np.linalg.svd(M, compute_uv=False)[
        : _factors(M, k)[0].shape[1]], np.linalg.svd(M, compute_uv=False)[: _factors(M, k)[0].shape[1], None]
        * _factors(M, k)[1]))
    assert alt.passed

    def _rank(M, r):
        U, S, Vt = np.linalg.svd(M, full_matrices=False)
        r = min(r, *M.shape)
        return U[:, :r] * S[:r], Vt[:r]

    square = low.check_factors_for_budget(lambda M, k: _rank(M, k // (2 * M.shape[1])))
    assert "r·(m + n) must fit" in lang.en(square.message)
    assert "largest r that fits" in lang.en(low.check_factors_for_budget(
        lambda M, k: _rank(M, k // sum(M.shape) + 1)).message)
    assert "smallest singular values" in lang.en(low.check_factors_for_budget(
        lambda M, k: (lambda U, S, Vt, r: (U[:, S.size - r:] * S[S.size - r:], Vt[S.size - r:]))(
            *np.linalg.svd(M, full_matrices=False), min(k // sum(M.shape), *M.shape))).message)
    assert "pair (B, A)" in lang.en(low.check_factors_for_budget(lambda M, k: M).message)
    swapped = low.check_factors_for_budget(lambda M, k: _factors(M, k)[::-1])
    assert "B must be (m, r)" in lang.en(swapped.message)


def _pair(count, tot, percent=100):
    return count, percent * count / tot


@pytest.mark.parametrize(("wrong", "hint"), [
    (lambda s, n, t, r, tot: _pair(n * r * sum(2 * s[k][1] for k in t), tot), "only for square"),
    (lambda s, n, t, r, tot: _pair(r * sum(sum(s[k]) for k in t), tot), "number of layers"),
    (lambda s, n, t, r, tot: _pair(n * r * sum(sum(s[k]) for k in t), tot, percent=1), "is a percent"),
    (lambda s, n, t, r, tot: _pair(n * r * sum(sum(v) for v in s.values()), tot), "named in targets"),
])
def test_lora_share_mistakes(lang, wrong, hint):
    assert hint in lang.en(bud.check_lora_share(wrong).message)


def _train(model, x, y, steps, lr, zero_grad=True, unfreeze=False):
    if unfreeze:
        model.requires_grad_(True)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_train_lora_accepts_a_loop_and_the_loss_falls():
    assert exp.check_train_lora(_train, hidden=True).passed
    model, x, y = exp.tiny_lora_task(0)
    losses = exp.reference_train(model, x, y, 8, 0.5)
    assert losses[-1] < 0.95 * losses[0]


def test_train_lora_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    exp.tiny_lora_task(5)
    assert torch.equal(torch.rand(3), expected)


def test_train_lora_rejects_known_mistakes(lang):
    assert "zero_grad" in lang.en(exp.check_train_lora(lambda *a: _train(*a, zero_grad=False)).message)
    assert "every weight" in lang.en(exp.check_train_lora(lambda *a: _train(*a, unfreeze=True)).message)

    def moves_the_base(model, x, y, steps, lr):
        losses = _train(model, x, y, steps, lr)
        with torch.no_grad():
            model[0].base.weight.add_(1e-3)
        return losses

    assert "base weight changed" in lang.en(exp.check_train_lora(moves_the_base).message)
    assert "list of floats" in lang.en(exp.check_train_lora(lambda *a: None).message)
    tensors = exp.check_train_lora(
        lambda m, x, y, s, lr: [torch.tensor(v, requires_grad=True) for v in _train(m, x, y, s, lr)])
    assert tensors.passed  # tensors with a gradient are read as floats, never a crash
