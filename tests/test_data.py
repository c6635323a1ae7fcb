"""The digits tasks: a fixed stratified split with no overlap, the right digits, exact transforms."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from lora_lab.lab.data import TASKS, TEST_FRACTION, load_task, split_indices

TARGETS = load_digits().target


@pytest.mark.parametrize("name", list(TASKS))
def test_train_and_test_never_overlap(name):
    task = load_task(name)
    assert not set(task.train_index) & set(task.test_index)
    assert len(task.x_train) == len(task.train_index) and len(task.x_test) == len(task.test_index)


def test_split_is_shared_by_every_task():
    """A test image of the pretraining task is never a training image of another task."""
    pretrain_test = set(load_task("0-4").test_index)
    for name in TASKS:
        assert not pretrain_test & set(load_task(name).train_index)


@pytest.mark.parametrize("name", list(TASKS))
def test_labels_are_positions_of_the_tasks_digits(name):
    task = load_task(name)
    digits = np.asarray(task.digits)
    assert np.array_equal(digits[task.y_train.numpy()], TARGETS[task.train_index])
    assert np.array_equal(digits[task.y_test.numpy()], TARGETS[task.test_index])
    assert task.n_classes == 5 and set(task.y_train.tolist()) == set(range(5))


def test_images_are_scaled_and_shaped():
    task = load_task("5-9")
    assert task.x_train.shape[1:] == (1, 8, 8) and task.x_train.dtype == torch.float32
    assert float(task.x_train.min()) >= 0.0 and float(task.x_train.max()) == 1.0


def test_split_is_stratified():
    train, test = split_indices(TARGETS)
    for digit in range(10):
        n = (TARGETS == digit).sum()
        assert (TARGETS[test] == digit).sum() == round(TEST_FRACTION * n)
    assert len(train) + len(test) == len(TARGETS)


def test_mirrored_task_mirrors_the_same_images():
    plain, mirrored = load_task("0-4"), load_task("0-4 mirrored")
    assert torch.equal(mirrored.x_test, plain.x_test.flip(-1))
    assert torch.equal(load_task("0-4 upside-down").x_train, plain.x_train.flip(-2))
    assert torch.equal(mirrored.y_test, plain.y_test)


def test_subset_keeps_a_stratified_share_and_the_test_set():
    task = load_task("5-9")
    small = task.subset(0.1, seed=0)
    assert set(small.train_index) <= set(task.train_index)
    assert torch.equal(small.x_test, task.x_test)
    for label in range(5):
        n = int((task.y_train == label).sum())
        assert int((small.y_train == label).sum()) == round(0.1 * n)
    assert not np.array_equal(task.subset(0.1, seed=1).train_index, small.train_index)
    assert torch.equal(task.subset(0.1, seed=0).x_train, small.x_train)


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1, True, "half"])
def test_subset_rejects_bad_fraction(fraction):
    with pytest.raises(ValueError, match="fraction must be a number in"):
        load_task("5-9").subset(fraction)


def test_unknown_task_is_an_error():
    with pytest.raises(ValueError, match="name must be one of"):
        load_task("6-9")
