"""op_shapes sees forward calls (fast) or every ATen operator with the backward pass."""

import pytest
import torch

from lora_lab.lora.trace import creates_shape, op_shapes


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
