"""What one training step costs, counted rather than timed: matmul FLOPs and saved activations.

LoRA removes the weight gradients of the frozen matrices and their optimizer state, but not the
forward pass through them, not the gradient that flows back *through* them to the LoRA factors
below, and only part of the activations autograd keeps for that backward pass (a frozen matrix
no longer keeps its input; norms, attention and nonlinearities still keep theirs). These two
counts show it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode


def _check(model, x) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")


def _loss(model: nn.Module, x: Tensor) -> Tensor:
    return model(x).float().square().mean()


def step_flops(model: nn.Module, x: Tensor) -> dict[str, int]:
    """Matmul FLOPs of one forward and one backward pass of a simple loss: {"forward", "backward"}.

    Counted by `torch.utils.flop_counter.FlopCounterMode` (2 per multiply-add). A frozen weight
    costs no weight-gradient matmul; the input gradient through it is still computed whenever
    something below it trains.
    """
    _check(model, x)
    with FlopCounterMode(display=False) as forward:
        loss = _loss(model, x)
    with FlopCounterMode(display=False) as backward:
        loss.backward()
    model.zero_grad(set_to_none=True)
    return {"forward": int(forward.get_total_flops()), "backward": int(backward.get_total_flops())}


def saved_activation_bytes(model: nn.Module, x: Tensor) -> int:
    """Bytes autograd keeps during one forward pass for the backward, parameters not counted.

    Each storage is counted once (a view of a saved tensor adds nothing). A frozen `nn.Linear`
    keeps nothing of its own (its input gradient needs only the weight); a trained one keeps its
    input for the weight gradient.
    """
    _check(model, x)
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: Tensor) -> Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = _loss(model, x)
    del loss  # the graph (and what it saved) goes with it
    return sum(seen.values())
