"""op_shapes sees forward calls (fast) or every ATen operator with the backward pass."""

import pytest
import torch

from lora_lab.lora.trace import creates_shape, op_shapes, passes_over


def test_forward_mode_records_python_calls():
    W = torch.randn(3, 4, requires_grad=True)
    x = torch.randn(5, 4)
    records = op_shapes(lambda: (x @ W.t()).sum().backward())
    assert (5, 3) in [s for _, s in records]
    assert (3, 4) not in [s for _, s in records]  # W's gradient is made by C++ autograd: not seen


def test_backward_mode_records_the_backward_pass():
    W = torch.randn(3, 4, requires_grad=True)
    x = torch.randn(5, 4)
    records = op_shapes(lambda: (x @ W.t()).sum().backward(), backward=True)
    assert ("mm", (5, 3)) in records  # forward
    assert ("mm", (3, 4)) in records  # W's gradient


def test_backward_mode_skips_views():
    x = torch.randn(6, 2)
    assert op_shapes(lambda: x.t(), backward=True) == []
    assert op_shapes(lambda: x.reshape(3, 4), backward=True) == []  # contiguous: a view
    assert ("clone", (2, 6)) in op_shapes(lambda: x.t().reshape(3, 4), backward=True)  # a copy


@pytest.mark.parametrize("backward", [False, True])
def test_creates_shape_finds_a_product(backward):
    B, A = torch.randn(7, 2), torch.randn(2, 5)
    assert len(creates_shape(lambda: B @ A, (7, 5), backward)) == 1
    assert creates_shape(lambda: (torch.randn(3, 5) @ A.t()) @ B.t(), (7, 5), backward) == []


def test_bad_argument():
    with pytest.raises(TypeError, match="fn must be a function of no arguments, got int"):
        op_shapes(3)


def _passes(layer, n=12, d_in=6, d_out=5):
    x = torch.randn(n, d_in, requires_grad=True)
    g = torch.randn(n, d_out)
    return passes_over(lambda: layer(x).backward(g), (n, d_out))


def test_passes_over_counts_reads_and_writes_of_the_activations():
    from torch import nn

    from lora_lab.lora.fused import FusedLoRALinear
    from lora_lab.lora.layer import LoRALinear

    torch.manual_seed(0)
    base = _passes(nn.Linear(6, 5).requires_grad_(False))
    assert base == [("addmm", 0, 1), ("mm", 1, 0)]  # write h; read g for grad_x
    plain, fused = _passes(LoRALinear(nn.Linear(6, 5), r=2)), _passes(FusedLoRALinear(nn.Linear(6, 5), r=2))
    total = [sum(r + w for _, r, w in rows) for rows in (base, fused, plain)]
    assert total[0] < total[1] < total[2]
    assert ("mul", 1, 1) in plain and ("add", 2, 1) in plain  # the scale and the add: the extra passes
    assert ("addmm_", 1, 1) in fused and not any(op in ("mul", "add") for op, _, _ in fused)


def test_passes_over_bad_arguments():
    with pytest.raises(ValueError, match=r"shape must be 2-D and not square .* got \(4, 4\)"):
        passes_over(lambda: None, (4, 4))
    with pytest.raises(TypeError, match="fn must be a function of no arguments, got int"):
        passes_over(3, (4, 5))
