"""A small deterministic training loop (CPU, fixed seed and threads), returning a history to plot.

Determinism: the model's new parameters and the batch order come from `seed`,
`torch.use_deterministic_algorithms(True)` forbids nondeterministic kernels, and torch uses a
fixed number of threads, so the same call gives bit-identical losses on the same install.

Speed: `fit` trains on one thread (`FIT_THREADS`, inside `torch_threads`), then gives the caller
back its thread count. The course's models are so small that a second thread only adds
synchronisation: one adaptation run of the ViT is faster on one thread and uses less CPU time
(`python -m benchmarks threads` times both side by side).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lora_lab._checks import check_int, check_positive

#: Threads torch may use. Fixed, so float reductions split the same way on every machine.
TORCH_THREADS = 2
#: Threads `fit` trains on (fixed too): one is faster than two for models this small.
FIT_THREADS = 1


@dataclass
class History:
    """What one training run produced: per-step losses, per-epoch test accuracy, costs."""

    losses: list = field(default_factory=list)          # training loss after each step
    test_accuracy: list = field(default_factory=list)   # after each evaluated epoch
    eval_epochs: list = field(default_factory=list)     # which epochs (1-based) were evaluated
    trainable: int = 0                                  # trainable parameters
    optimizer_state_bytes: int = 0                      # Adam's moment buffers
    seconds_per_step: float = float("nan")              # median wall clock: noisy, never in a test

    @property
    def accuracy(self) -> float:
        """Test accuracy at the end of training."""
        return self.test_accuracy[-1] if self.test_accuracy else float("nan")


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """torch on `threads` threads inside the block; the caller's count is restored after it (a
    count that is already right is left alone: the sliders call this on every move)."""
    threads, before = check_int("threads", threads, low=1), torch.get_num_threads()
    if threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads != before:
            torch.set_num_threads(before)


def make_deterministic(seed: int = 0, threads: int = TORCH_THREADS) -> None:
    """Seed torch, forbid nondeterministic kernels and fix the thread count."""
    torch.manual_seed(check_int("seed", seed, low=0))
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(check_int("threads", threads, low=1))


@torch.no_grad()
def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Share of `x` classified as `y`.  Shapes: x (N, ...), y (N,)."""
    was_training = model.training
    model.eval()
    correct = sum(int((model(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum())
                  for i in range(0, len(x), batch_size))
    model.train(was_training)
    return correct / len(x)


def optimizer_state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes held by the optimizer's state tensors (Adam: two moments per trained parameter)."""
    return sum(t.numel() * t.element_size() for state in optimizer.state.values()
               for t in state.values() if torch.is_tensor(t) and t.dim() > 0)


def _batches(n: int, batch_size: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def _cosine(step: int, total: int) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def _optimizer(model: nn.Module, lr: float, weight_decay: float,
               lr_by_name: dict[str, float] | None) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, one group per learning rate."""
    groups: dict[float, list] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            rates = [v for k, v in (lr_by_name or {}).items() if k in name]
            groups.setdefault(check_positive("lr", rates[0] if rates else lr), []).append(p)
    if not groups:
        raise ValueError("model has no trainable parameters: unfreeze something before fit()")
    return torch.optim.AdamW([{"params": ps, "lr": r} for r, ps in groups.items()],
                             weight_decay=weight_decay)


def fit(model: nn.Module, task, epochs: int = 10, lr: float = 1e-3, batch_size: int = 32,
        seed: int = 0, weight_decay: float = 0.0, cosine: bool = False,
        lr_by_name: dict[str, float] | None = None, eval_every: int = 1,
        threads: int = FIT_THREADS) -> History:
    """Train the parameters of `model` that require grad with AdamW on `task`; return the History.

    `task` has x_train, y_train, x_test, y_test (see `lora_lab.lab.data.Task`). `cosine` decays every
    learning rate to 0 along a half cosine; `lr_by_name` gives parameters whose name contains a
    key that key's rate (e.g. {"head.": 1e-2}). The test set is scored every `eval_every` epochs
    and after the last. Training runs on `threads` torch threads; the caller's count is restored.
    """
    epochs, batch_size = check_int("epochs", epochs, low=1), check_int("batch_size", batch_size, low=1)
    eval_every = check_int("eval_every", eval_every, low=1)
    with torch_threads(threads):
        make_deterministic(seed, threads)
        return _fit(model, task, epochs, lr, batch_size, seed, weight_decay, cosine, lr_by_name, eval_every)


def _fit(model, task, epochs, lr, batch_size, seed, weight_decay, cosine, lr_by_name,
         eval_every) -> History:
    opt = _optimizer(model, lr, weight_decay, lr_by_name)
    total = epochs * math.ceil(len(task.x_train) / batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: _cosine(t, total) if cosine else 1.0)
    gen = torch.Generator().manual_seed(seed)
    history = History(trainable=sum(p.numel() for g in opt.param_groups for p in g["params"]))
    seconds = []
    model.train()
    for epoch in range(1, epochs + 1):
        for idx in _batches(len(task.x_train), batch_size, gen):
            start = time.perf_counter()
            loss = F.cross_entropy(model(task.x_train[idx]), task.y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            history.losses.append(loss.item())
            seconds.append(time.perf_counter() - start)
        if epoch % eval_every == 0 or epoch == epochs:
            history.eval_epochs.append(epoch)
            history.test_accuracy.append(accuracy(model, task.x_test, task.y_test))
    history.seconds_per_step = statistics.median(seconds)  # the median ignores warm-up steps
    history.optimizer_state_bytes = optimizer_state_bytes(opt)
    return history
