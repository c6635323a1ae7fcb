"""Which tensors a computation creates: record the name and output shape of every torch operation.

Used to show (and test) that a LoRA layer never builds the (d_out, d_in) product B @ A while
training, while the source notes' layer builds it on every forward pass; and to count the passes
a layer makes over its (tokens, d_out) activations (`passes_over`), which is where the plain
LoRALinear spends its extra time on a CPU and what FusedLoRALinear saves.

Two levels, both from PyTorch's "extending torch" guide:
- forward only (default): a `TorchFunctionMode` sees every torch call your Python code makes.
  Instant. Views (`.T`, `reshape`) are recorded too.
- with backward: a `TorchDispatchMode` sees every ATen operator, the backward pass included, and
  skips views. Its first use in a process imports part of torch (a few seconds).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def _note(records: list, name: str, out) -> None:
    for t in out if isinstance(out, (tuple, list)) else (out,):
        if isinstance(t, Tensor):
            records.append((name, tuple(t.shape)))


class _FunctionRecorder(TorchFunctionMode):
    """Notes (function name, shape) of every tensor a torch function or method returns."""

    def __init__(self):
        super().__init__()
        self.records: list[tuple[str, tuple[int, ...]]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        _note(self.records, getattr(func, "__name__", str(func)), out)
        return out


class _DispatchRecorder(TorchDispatchMode):
    """Notes (operator, shape) of every new tensor an ATen operator returns, views skipped."""

    def __init__(self):
        super().__init__()
        self.records: list[tuple[str, tuple[int, ...]]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:  # a view (t, expand, reshape of a contiguous tensor) allocates nothing
            _note(self.records, func.overloadpacket.__name__, out)
        return out


class _PassRecorder(TorchDispatchMode):
    """Notes (operator, reads, writes) of tensors of the given shapes, for every non-view operator."""

    def __init__(self, shapes: set[tuple[int, ...]]):
        super().__init__()
        self.shapes, self.records = shapes, []

    def _count(self, tree) -> int:
        return sum(isinstance(t, Tensor) and tuple(t.shape) in self.shapes for t in tree_leaves(tree))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            reads, writes = self._count((args, kwargs)), self._count(out)
            if reads or writes:
                self.records.append((func.overloadpacket.__name__, reads, writes))
        return out


def passes_over(fn: Callable[[], object], shape: tuple[int, int]) -> list[tuple[str, int, int]]:
    """(operator, reads, writes) of a tensor of `shape` or its transpose, for every non-view ATen
    operator of `fn()`, backward pass included: each read or write is one pass over that memory.
    Shapes: `shape` (tokens, d_out), e.g. a layer's output; it must not be square."""
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    shape = tuple(shape)
    if len(shape) != 2 or shape[0] == shape[1]:
        raise ValueError(f"shape must be 2-D and not square (a transpose must be told apart), got {shape}")
    with _PassRecorder({shape, shape[::-1]}) as recorder:
        fn()
    return recorder.records


def op_shapes(fn: Callable[[], object], backward: bool = False) -> list[tuple[str, tuple[int, ...]]]:
    """Run `fn()`; return (operation, output shape) for each tensor its torch operations return,
    in order: the Python-level calls (default), or every non-view ATen operator including the
    backward pass (`backward=True`)."""
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    with (_DispatchRecorder() if backward else _FunctionRecorder()) as recorder:
        fn()
    return recorder.records


def creates_shape(fn: Callable[[], object], shape: tuple[int, ...], backward: bool = False) -> list[str]:
    """Names of the operations in `fn()` that return a tensor of exactly `shape` (see `op_shapes`)."""
    return [name for name, s in op_shapes(fn, backward) if s == tuple(shape)]
