"""The experiments' data: scikit-learn's bundled handwritten digits (1,797 8×8 images, no download).

A base model learns one task (digits 0–4) and is adapted to another (digits 5–9, or the same
digits mirrored). Every task uses one fixed, stratified train/test split of the images, so a test
image of "0-4" is never a training image of "0-4 mirrored" either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from lora_lab._checks import check_choice, check_int

#: Task name -> (digits it classifies, image transform). Labels are the digits' positions.
TASKS = {
    "0-4": ((0, 1, 2, 3, 4), "none"),
    "5-9": ((5, 6, 7, 8, 9), "none"),
    "0-4 mirrored": ((0, 1, 2, 3, 4), "mirror"),
    "0-4 upside-down": ((0, 1, 2, 3, 4), "flip"),
}
PRETRAIN_TASK, ADAPT_TASK = "0-4", "5-9"
TEST_FRACTION = 0.4  # of each digit's images, held out; the split never changes with a seed
SPLIT_SEED = 0


@dataclass(frozen=True)
class Task:
    """One classification task: images (N, 1, 8, 8) in [0, 1] and labels (N,) in [0, n_classes)."""

    name: str
    digits: tuple
    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    train_index: np.ndarray  # rows of `load_digits()` used for training (for overlap checks)
    test_index: np.ndarray

    @property
    def n_classes(self) -> int:
        return len(self.digits)

    def subset(self, fraction: float, seed: int = 0) -> Task:
        """The same task with a stratified `fraction` of the training images; the test set is kept."""
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"fraction must be a number in (0, 1], got {fraction!r}")
        rng = np.random.default_rng(check_int("seed", seed, low=0))
        keep = []
        for label in range(self.n_classes):
            rows = np.flatnonzero(self.y_train.numpy() == label)
            n = max(1, round(fraction * len(rows)))
            keep.append(np.sort(rng.permutation(rows)[:n]))
        keep = np.concatenate(keep)
        return Task(f"{self.name} ({fraction:.0%})", self.digits, self.x_train[keep], self.y_train[keep],
                    self.x_test, self.y_test, self.train_index[keep], self.test_index)


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int64)


def split_indices(labels: np.ndarray, test_fraction: float = TEST_FRACTION,
                  seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split: (train rows, test rows), each digit shuffled once by `seed`."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for digit in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        n_test = round(test_fraction * len(rows))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _transform(images: np.ndarray, kind: str) -> np.ndarray:
    if kind == "mirror":
        return images[:, :, ::-1].copy()  # (N, 8, 8), left-right
    if kind == "flip":
        return images[:, ::-1, :].copy()  # (N, 8, 8), upside-down
    return images


def _tensors(images, labels, rows, digits, kind) -> tuple[Tensor, Tensor]:
    keep = rows[np.isin(labels[rows], digits)]
    x = torch.from_numpy(_transform(images[keep], kind)).unsqueeze(1)  # (N, 1, 8, 8)
    y = torch.from_numpy(np.searchsorted(np.asarray(digits), labels[keep]))  # digit -> position
    return x, y, keep


def load_task(name: str = ADAPT_TASK) -> Task:
    """One of `TASKS` ("0-4", "5-9", "0-4 mirrored", "0-4 upside-down") with the fixed split."""
    digits, kind = TASKS[check_choice("name", name, TASKS)]
    images, labels = _digits()
    train_rows, test_rows = split_indices(labels)
    x_tr, y_tr, tr = _tensors(images, labels, train_rows, digits, kind)
    x_te, y_te, te = _tensors(images, labels, test_rows, digits, kind)
    return Task(name, digits, x_tr, y_tr, x_te, y_te, tr, te)
