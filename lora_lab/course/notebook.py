"""The one set-up call every notebook makes first: seeds, threads, print options, style, offline."""

from __future__ import annotations

import ipaddress
import os
import random
import socket

import numpy as np

from lora_lab.course.i18n import set_language

_real_connect = socket.socket.connect


def seed_everything(seed: int = 0) -> None:
    """Seed Python's `random`, NumPy's global generator and torch."""
    import torch

    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _is_local(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if not isinstance(host, str):
        return True  # a Unix socket path as bytes, never the network
    if host in ("localhost", "") or os.path.sep in host:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: the network


def _guarded_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address):
        raise ConnectionRefusedError(
            f"LoRA Lab runs offline: a connection to {address!r} was blocked "
            "(unset LORA_LAB_OFFLINE to allow it)"
        )
    return _real_connect(self, address)


def block_network() -> None:
    """Refuse every socket connection that leaves this machine (loopback stays open)."""
    socket.socket.connect = _guarded_connect


def setup_notebook(seed: int = 0, quiet: bool = False, lang: str = "en") -> dict:
    """Seed everything, fix torch's threads, set print options and one plot style, and set the
    language of the exercise checkers' messages: `lang` "en" (the English notebooks) or "zh"
    (the Chinese edition, `notebooks/zh/`).

    When the environment variable LORA_LAB_OFFLINE is set (as `make test` does), connections
    that leave the machine are refused, which proves a notebook needs no network.
    Returns the versions that matter; prints them unless `quiet`.
    """
    # idle OpenMP threads sleep instead of spinning: on a busy 2-core machine a spinning torch runs
    # many times slower (measured: a training step 0.95 s instead of 0.06 s); results are unchanged
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    set_language(lang)  # checked first: a wrong lang changes nothing else
    import matplotlib
    import torch

    from lora_lab.lab.train import TORCH_THREADS

    seed_everything(seed)
    torch.set_num_threads(TORCH_THREADS)
    np.set_printoptions(precision=4, suppress=True, linewidth=100)
    torch.set_printoptions(precision=4, sci_mode=False, linewidth=100)
    matplotlib.rcParams.update(
        {"figure.dpi": 80, "figure.figsize": (6.4, 4.0), "axes.grid": True, "grid.alpha": 0.3,
         "axes.spines.top": False, "axes.spines.right": False, "image.cmap": "viridis"}
    )
    if os.environ.get("LORA_LAB_OFFLINE"):
        block_network()
    # the Python patch release is left out: it varies between machines and the outputs don't
    versions = {"numpy": np.__version__,
                "torch": torch.__version__.split("+")[0], "matplotlib": matplotlib.__version__}
    if not quiet:
        print(" · ".join(f"{k} {v}" for k, v in versions.items()) + f" · seed {seed}")
    return versions
