"""op_shapes sees forward and backward operators and skips views."""

import pytest
import torch

from lora_lab.trace import creates_shape, op_shapes


def test_records_forward_and_backward():
    W = torch.randn(3, 4, requires_grad=True)
    x = torch.randn(5, 4)
    records = op_shapes(lambda: (x @ W.t()).sum().backward())
    assert ("mm", (5, 3)) in records  # forward
    assert (3, 4) in [s for _, s in records]  # W's gradient, made in the backward pass


def test_views_are_not_records():
    x = torch.randn(6, 2)
    assert op_shapes(lambda: x.t()) == []
    assert op_shapes(lambda: x.reshape(3, 4)) == []  # contiguous: a view
    assert ("clone", (2, 6)) in op_shapes(lambda: x.t().reshape(3, 4))  # not contiguous: a copy


def test_creates_shape_finds_a_product():
    B, A = torch.randn(7, 2), torch.randn(2, 5)
    assert creates_shape(lambda: B @ A, (7, 5)) == ["mm"]
    assert creates_shape(lambda: (torch.randn(3, 5) @ A.t()) @ B.t(), (7, 5)) == []


def test_bad_argument():
    with pytest.raises(TypeError, match="fn must be a function of no arguments, got int"):
        op_shapes(3)
