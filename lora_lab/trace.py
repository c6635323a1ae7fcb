"""Which tensors a computation creates: record the name and output shape of every ATen operator.

Used to show (and test) that a LoRA layer never builds the (d_out, d_in) product B @ A while
training, while the source notes' layer builds it on every forward pass. It works at torch's
dispatcher level (a `TorchDispatchMode`, as PyTorch's "extending torch" guide describes), so it
sees the backward pass too, not only the Python code of the forward.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torch.utils._python_dispatch import TorchDispatchMode


class _Recorder(TorchDispatchMode):
    """A dispatch mode that notes (operator, shape) of every new tensor an operator returns."""

    def __init__(self):
        super().__init__()
        self.records: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:  # a view (t, expand, reshape of a contiguous tensor) allocates nothing
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, Tensor):
                    self.records.append((func.overloadpacket.__name__, tuple(t.shape)))
        return out


def op_shapes(fn: Callable[[], object]) -> list[tuple[str, tuple[int, ...]]]:
    """Run `fn()`; return (operator, output shape) for every non-view ATen operator it ran,
    forward and backward alike, in order."""
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    with _Recorder() as recorder:
        fn()
    return recorder.records


def creates_shape(fn: Callable[[], object], shape: tuple[int, ...]) -> list[str]:
    """Names of the operators in `fn()` that return a new tensor of exactly `shape`."""
    return [name for name, s in op_shapes(fn) if s == tuple(shape)]
