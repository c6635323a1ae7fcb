"""setup_notebook seeds, fixes threads, and (offline mode) refuses non-loopback connections."""

import random
import socket

import numpy as np
import pytest
import torch

from lora_lab.course.notebook import _is_local, block_network, setup_notebook
from lora_lab.lab.train import TORCH_THREADS


def test_setup_seeds_everything_and_fixes_threads(capsys):
    setup_notebook(seed=3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    versions = setup_notebook(seed=3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
    assert torch.get_num_threads() == TORCH_THREADS
    assert versions["torch"] == torch.__version__.split("+")[0]
    assert "seed 3" in capsys.readouterr().out


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_setup_rejects_bad_seed(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        setup_notebook(seed=seed, quiet=True)


@pytest.mark.parametrize(("address", "local"), [
    (("127.0.0.1", 80), True), (("::1", 80, 0, 0), True), (("localhost", 80), True),
    (("192.0.2.1", 80), False), (("example.org", 443), False),
])
def test_is_local(address, local):
    assert _is_local(address) is local


def test_block_network_refuses_outside_addresses(monkeypatch):
    monkeypatch.setattr(socket.socket, "connect", socket.socket.connect)  # restored after the test
    block_network()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # 192.0.2.1 is TEST-NET-1 (RFC 5737); the guard refuses before any packet is sent
        with pytest.raises(ConnectionRefusedError, match="runs offline"):
            s.connect(("192.0.2.1", 80))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
            client.connect(server.getsockname())  # loopback stays open (Jupyter kernels need it)
