"""The byte-counting hook inside one in-process DDP group (world size 1), and the batch sharding."""

import pytest
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from lora_lab.lab.ddp.launcher import free_port
from lora_lab.lab.ddp.rank import HOST, ByteCounter, _batches, counting_hook


@pytest.fixture
def group():
    """A one-rank gloo process group on 127.0.0.1, destroyed afterwards."""
    dist.init_process_group("gloo", init_method=f"tcp://{HOST}:{free_port()}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    model[0].requires_grad_(False)  # frozen, as LoRA's W0: no bucket, no bytes
    return model


@pytest.mark.parametrize(("wire", "width"), [(None, 4), (torch.float16, 2)])
def test_hook_counts_trainable_gradients_once(group, wire, width):
    model = _model()
    ddp = DistributedDataParallel(model)
    counter = ByteCounter(wire_dtype=wire)
    ddp.register_comm_hook(counter, counting_hook)
    for _ in range(2):
        ddp(torch.randn(4, 6)).sum().backward()
        sent, buckets = counter.take()
        assert sent == (5 * 3 + 3) * width and sum(buckets) == 18


def test_hook_leaves_gradients_as_plain_backward(group):
    x = torch.randn(4, 6)
    plain = _model()
    plain(x).sum().backward()
    ddp = DistributedDataParallel(_model())
    ddp.register_comm_hook(ByteCounter(), counting_hook)
    ddp(x).sum().backward()
    for p, q in zip(plain.parameters(), ddp.module.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None)
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad)


def test_byte_counter_take_resets():
    counter = ByteCounter(bytes=12, buckets=[3])
    assert counter.take() == (12, [3])
    assert counter.take() == (0, [])


@pytest.mark.parametrize("world_size", [1, 2, 4])
def test_rank_shares_make_up_the_global_batch(world_size):
    """Each global batch is split without overlap; together the ranks see what one rank would."""
    whole = _batches(50, 8, 0, 1, seed=3)
    shares = [_batches(50, 8, rank, world_size, seed=3) for rank in range(world_size)]
    for _ in range(13):  # past the end of an epoch (6 full batches of 8 in 50)
        parts = [next(s) for s in shares]
        assert all(len(p) == 8 // world_size for p in parts)
        assert sorted(torch.cat(parts).tolist()) == sorted(next(whole).tolist())
