"""The checkers of notebook 12 accept reference solutions and reject known-wrong ones with a hint."""

import numpy as np
import pytest

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.since2021 import check_count_intruders, check_lora_plus_groups, check_lr_ratio
from lora_lab.maths.intruders import intruders

pytestmark = pytest.mark.usefixtures("lang")  # every test, in English and in Chinese


def _stub(*args):
    raise NotImplementedError()


def _best(lrs, losses):
    losses = np.nan_to_num(np.asarray(losses, dtype=float), nan=np.inf)
    return lrs[int(np.argmin(losses))]


def _ratio(fl, fs, ll, ls):
    return _best(ll, ls) / _best(fl, fs)


def test_lr_ratio_accepts_the_reference_and_rejects_known_mistakes(lang, capsys):
    assert check_lr_ratio(_ratio).passed
    res = check_lr_ratio(lambda fl, fs, ll, ls: 1 / _ratio(fl, fs, ll, ls))
    assert not res.passed and "full / LoRA" in lang.en(res.message)
    res = check_lr_ratio(lambda fl, fs, ll, ls: ll[int(np.argmin(ls))] / fl[int(np.argmin(fs))])
    assert not res.passed and "NaN" in lang.en(res.message)
    res = check_lr_ratio(lambda fl, fs, ll, ls: ll[int(np.argmax(ls))] / fl[int(np.argmax(fs))])
    assert not res.passed and "highest loss" in lang.en(res.message)
    assert lang.en(check_lr_ratio(_stub).message).endswith(NOT_DONE)


def _count(W0, W, k, eps, full=False):
    U0 = np.linalg.svd(W0, full_matrices=full)[0]
    U = np.linalg.svd(W, full_matrices=full)[0]
    best = np.abs(U[:, :k].T @ U0).max(axis=1)
    return int((best < eps).sum())


def test_count_intruders_accepts_two_solutions_and_rejects_known_mistakes(lang, capsys):
    assert check_count_intruders(_count).passed
    assert check_count_intruders(lambda W0, W, k, eps: len(intruders(W0, W, k, eps))).passed
    no_abs = check_count_intruders(lambda W0, W, k, eps: int(
        ((np.linalg.svd(W, full_matrices=False)[0][:, :k].T @ np.linalg.svd(W0, full_matrices=False)[0])
         .max(axis=1) < eps).sum()))
    assert not no_abs.passed and "sign is arbitrary" in lang.en(no_abs.message)
    delta = check_count_intruders(lambda W0, W, k, eps: _count(W0, W - W0, k, eps))
    assert not delta.passed and "not of ΔW" in lang.en(delta.message)
    padded = check_count_intruders(lambda W0, W, k, eps: _count(W0, W, k, eps, full=True))
    assert not padded.passed and "full_matrices=False" in lang.en(padded.message)
    assert not check_count_intruders(lambda W0, W, k, eps: "three").passed


def _groups(model, lr, ratio):
    b = [p for n, p in model.named_parameters() if p.requires_grad and "lora_B" in n]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and "lora_B" not in n]
    return [{"params": b, "lr": lr * ratio}, {"params": rest, "lr": lr}]


def test_lora_plus_groups_accepts_the_reference_and_rejects_known_mistakes(lang, capsys):
    assert check_lora_plus_groups(_groups).passed

    def swapped(model, lr, ratio):
        a = [p for n, p in model.named_parameters() if p.requires_grad and "lora_A" in n]
        rest = [p for n, p in model.named_parameters() if p.requires_grad and "lora_A" not in n]
        return [{"params": a, "lr": lr * ratio}, {"params": rest, "lr": lr}]

    res = check_lora_plus_groups(swapped)
    assert not res.passed and "only B gets the larger rate" in lang.en(res.message)

    def with_frozen(model, lr, ratio):
        return [{"params": list(model.parameters()), "lr": lr}]

    assert "frozen parameters" in lang.en(check_lora_plus_groups(with_frozen).message)

    def head_forgotten(model, lr, ratio):
        return [g for g in _groups(model, lr, ratio)][:1]

    assert "trains but is in no group" in lang.en(check_lora_plus_groups(head_forgotten).message)
    assert lang.en(check_lora_plus_groups(_stub).message).endswith(NOT_DONE)


# --- the grade cells' hidden cases -------------------------------------------------------------

def test_hidden_cases_pass_the_reference_and_count_in_the_score(lang, capsys):
    for check, fn, visible, total in ((check_lr_ratio, _ratio, 3, 7), (check_count_intruders, _count, 4, 8),
                                      (check_lora_plus_groups, _groups, 2, 4)):
        shown, graded = check(fn), check(fn, hidden=True)
        assert shown.passed and (shown.total, shown.hidden) == (visible, 0)
        assert graded.passed and (graded.cases, graded.total) == (total, total)
        assert graded.hidden == total - visible
        assert lang.en(graded.message).endswith(f"{total}/{total} cases ({total - visible} hidden)")


def test_hidden_cases_catch_answers_that_fit_only_the_visible_ones(lang, capsys):
    never_below_one = check_lr_ratio(lambda fl, fs, ll, ls: max(1.0, _ratio(fl, fs, ll, ls)), hidden=True)
    assert check_lr_ratio(lambda fl, fs, ll, ls: max(1.0, _ratio(fl, fs, ll, ls))).passed
    assert not never_below_one.passed and "hidden case LoRA's best below full's" in lang.en(
        never_below_one.message)
    assert never_below_one.cases == 6 and never_below_one.fraction == 6 / 7

    def only_this_shape(W0, W, k, eps):
        return _count(W0, W, k, eps) if W.shape == (12, 10) else 0

    assert check_count_intruders(only_this_shape).passed
    shape_cheat = check_count_intruders(only_this_shape, hidden=True)
    assert not shape_cheat.passed and "hidden case three planted, W0 (20, 8)" in lang.en(shape_cheat.message)

    def by_name_only(model, lr, ratio):  # ignores requires_grad: right only when every LoRA factor trains
        b = [p for n, p in model.named_parameters() if "lora_B" in n]
        rest = [p for n, p in model.named_parameters() if "lora_A" in n or n.startswith("head")]
        return [{"params": b, "lr": lr * ratio}, {"params": rest, "lr": lr}]

    assert check_lora_plus_groups(by_name_only).passed
    names = check_lora_plus_groups(by_name_only, hidden=True)
    assert not names.passed and "hidden case nested blocks" in lang.en(names.message)
    assert "frozen parameters" in lang.en(names.message)
    assert (names.cases, names.total) == (3, 4)


def test_checkers_turn_a_learners_mistake_into_a_message(lang, capsys):
    assert "NaN" in lang.en(check_lr_ratio(lambda *a: float("nan")).message)
    assert "expected shape ()" in lang.en(check_count_intruders(lambda W0, W, k, eps: np.zeros(k)).message)
    unreadable = check_lora_plus_groups(lambda m, lr, ratio: [{"params": list(m.parameters()), "lr": "fast"}])
    assert "could not be read" in lang.en(unreadable.message) and unreadable.cases == 0
    assert "not one tensor" in lang.en(check_lora_plus_groups(
        lambda m, lr, ratio: [{"params": next(m.parameters()), "lr": lr}]).message)
    assert "list of dicts" in lang.en(check_lora_plus_groups(lambda m, lr, ratio: None).message)
    assert lang.en(check_lora_plus_groups(_stub, hidden=True).message) == f"✗ lora_plus_groups: {NOT_DONE}"


def test_show_false_prints_nothing(lang, capsys):
    check_lr_ratio(_ratio, show=False, hidden=True)
    check_count_intruders(_count, show=False)
    check_lora_plus_groups(_groups, show=False, hidden=True)
    assert lang.en(capsys.readouterr().out) == ""
