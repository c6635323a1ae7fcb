"""The checkers of notebook 12 accept reference solutions and reject known-wrong ones with a hint."""

import numpy as np

from lora_lab.course.exercises import NOT_DONE
from lora_lab.course.exercises.since2021 import check_count_intruders, check_lora_plus_groups, check_lr_ratio
from lora_lab.maths.intruders import intruders


def _stub(*args):
    raise NotImplementedError()


def _best(lrs, losses):
    losses = np.nan_to_num(np.asarray(losses, dtype=float), nan=np.inf)
    return lrs[int(np.argmin(losses))]


def _ratio(fl, fs, ll, ls):
    return _best(ll, ls) / _best(fl, fs)


def test_lr_ratio_accepts_the_reference_and_rejects_known_mistakes(capsys):
    assert check_lr_ratio(_ratio).passed
    res = check_lr_ratio(lambda fl, fs, ll, ls: 1 / _ratio(fl, fs, ll, ls))
    assert not res.passed and "full / LoRA" in res.message
    res = check_lr_ratio(lambda fl, fs, ll, ls: ll[int(np.argmin(ls))] / fl[int(np.argmin(fs))])
    assert not res.passed and "NaN" in res.message
    res = check_lr_ratio(lambda fl, fs, ll, ls: ll[int(np.argmax(ls))] / fl[int(np.argmax(fs))])
    assert not res.passed and "highest loss" in res.message
    assert check_lr_ratio(_stub).message.endswith(NOT_DONE)


def _count(W0, W, k, eps, full=False):
    U0 = np.linalg.svd(W0, full_matrices=full)[0]
    U = np.linalg.svd(W, full_matrices=full)[0]
    best = np.abs(U[:, :k].T @ U0).max(axis=1)
    return int((best < eps).sum())


def test_count_intruders_accepts_two_solutions_and_rejects_known_mistakes(capsys):
    assert check_count_intruders(_count).passed
    assert check_count_intruders(lambda W0, W, k, eps: len(intruders(W0, W, k, eps))).passed
    no_abs = check_count_intruders(lambda W0, W, k, eps: int(
        ((np.linalg.svd(W, full_matrices=False)[0][:, :k].T @ np.linalg.svd(W0, full_matrices=False)[0])
         .max(axis=1) < eps).sum()))
    assert not no_abs.passed and "sign is arbitrary" in no_abs.message
    delta = check_count_intruders(lambda W0, W, k, eps: _count(W0, W - W0, k, eps))
    assert not delta.passed and "not of ΔW" in delta.message
    padded = check_count_intruders(lambda W0, W, k, eps: _count(W0, W, k, eps, full=True))
    assert not padded.passed and "full_matrices=False" in padded.message
    assert not check_count_intruders(lambda W0, W, k, eps: "three").passed


def _groups(model, lr, ratio):
    b = [p for n, p in model.named_parameters() if p.requires_grad and "lora_B" in n]
    rest = [p for n, p in model.named_parameters() if p.requires_grad and "lora_B" not in n]
    return [{"params": b, "lr": lr * ratio}, {"params": rest, "lr": lr}]


def test_lora_plus_groups_accepts_the_reference_and_rejects_known_mistakes(capsys):
    assert check_lora_plus_groups(_groups).passed

    def swapped(model, lr, ratio):
        a = [p for n, p in model.named_parameters() if p.requires_grad and "lora_A" in n]
        rest = [p for n, p in model.named_parameters() if p.requires_grad and "lora_A" not in n]
        return [{"params": a, "lr": lr * ratio}, {"params": rest, "lr": lr}]

    res = check_lora_plus_groups(swapped)
    assert not res.passed and "only B gets the larger rate" in res.message

    def with_frozen(model, lr, ratio):
        return [{"params": list(model.parameters()), "lr": lr}]

    assert "frozen parameters" in check_lora_plus_groups(with_frozen).message

    def head_forgotten(model, lr, ratio):
        return [g for g in _groups(model, lr, ratio)][:1]

    assert "trains but is in no group" in check_lora_plus_groups(head_forgotten).message
    assert check_lora_plus_groups(_stub).message.endswith(NOT_DONE)
