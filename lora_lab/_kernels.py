"""One set of CPU kernels on every x86-64 machine, so that the course's stored outputs reproduce.

torch chooses its kernels by the CPU it finds. Where the CPU has AVX-512, its own vectorised
loops (ATen), MKL's matrix products and oneDNN's primitives take AVX-512 paths; elsewhere they take
AVX2 paths. The two sum in a different order, so float32 results differ in their last bits, and
some of those differences grow, through training, into a printed digit: 23 cells of 7 notebooks
printed otherwise on an AVX2 machine than on the AVX-512 machine that recorded them (CI,
2026-12-02). Capping all three at AVX2, which every machine the course is checked on has, makes
an AVX-512 machine compute what an AVX2 machine computes.

`pin()` runs when `lora_lab` is first imported, before torch is, and only sets a variable that is
not set already: `ATEN_CPU_CAPABILITY=default` (or any value you set) keeps your choice, and
`LORA_LAB_NATIVE_KERNELS=1` leaves all three to torch (`make bench`'s `kernels` compares). It caps
ATen only on a CPU that reports AVX2 (ATen runs the kernel it is told to, even one the CPU lacks);
MKL's and oneDNN's settings are upper bounds, harmless anywhere. Once torch is imported the
choice is made: a process that imported torch before `lora_lab` keeps torch's own.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

PINNED = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
          "ONEDNN_MAX_CPU_ISA": "AVX2"}


def has_avx2(cpuinfo: str | None = None) -> bool:
    """Whether the CPU reports AVX2 (Linux's /proc/cpuinfo; False where it cannot tell)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    return any(line.startswith("flags") and "avx2" in line.split() for line in cpuinfo.splitlines())


def pin(environ=os.environ, machine: str | None = None, avx2: bool | None = None) -> dict:
    """Set the kernel caps in `environ` where they are unset; returns the ones it set."""
    if environ.get("LORA_LAB_NATIVE_KERNELS") or (machine or platform.machine()).lower() not in (
            "x86_64", "amd64"):
        return {}
    wanted = dict(PINNED)
    if not (has_avx2() if avx2 is None else avx2):
        del wanted["ATEN_CPU_CAPABILITY"]
    chosen = {key: value for key, value in wanted.items() if key not in environ}
    environ.update(chosen)
    return chosen
