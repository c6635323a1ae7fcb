"""lora_lab._kernels: the kernel caps are set before torch chooses, and never over a user's choice."""

import os
import platform
import subprocess
import sys

import pytest

from lora_lab import _kernels

AVX2_CPU = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n"
OLD_CPU = "processor\t: 0\nflags\t\t: fpu sse sse2 avx\n"


def test_has_avx2_reads_the_flags_line():
    assert _kernels.has_avx2(AVX2_CPU)
    assert not _kernels.has_avx2(OLD_CPU)
    assert not _kernels.has_avx2("model name\t: avx2 in a name, not a flag\n")


def test_pin_sets_all_three_caps_on_an_avx2_x86_machine():
    env = {}
    assert _kernels.pin(env, machine="x86_64", avx2=True) == _kernels.PINNED
    assert env == {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                   "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_pin_keeps_what_the_user_set():
    env = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}
    assert _kernels.pin(env, machine="AMD64", avx2=True) == {"ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["MKL_ENABLE_INSTRUCTIONS"] == "AVX512"


def test_pin_never_asks_aten_for_avx2_on_a_cpu_without_it():
    env = {}
    _kernels.pin(env, machine="x86_64", avx2=False)
    assert "ATEN_CPU_CAPABILITY" not in env  # ATen would run AVX2 code and crash
    assert env == {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}  # upper bounds


def test_native_kernels_opt_out_sets_nothing():
    env = {"LORA_LAB_NATIVE_KERNELS": "1"}
    assert _kernels.pin(env, machine="x86_64", avx2=True) == {} and env == {"LORA_LAB_NATIVE_KERNELS": "1"}


def test_pin_does_nothing_off_x86():
    env = {}
    assert _kernels.pin(env, machine="arm64", avx2=False) == {} and env == {}


def _capability(env_extra: dict, code: str) -> str:
    env = {k: v for k, v in os.environ.items()
           if k not in {*_kernels.PINNED, "LORA_LAB_NATIVE_KERNELS"}} | env_extra
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not (platform.machine().lower() in ("x86_64", "amd64") and _kernels.has_avx2()),
                    reason="needs an x86-64 CPU that reports AVX2")
def test_importing_lora_lab_makes_torch_choose_avx2_and_a_user_setting_wins():
    ask = "import torch.backends.cpu as c; print(c.get_cpu_capability())"
    assert _capability({}, f"import lora_lab; {ask}") == "AVX2"
    # torch decides at its first kernel, so importing torch first is still in time
    assert _capability({}, f"import torch; import lora_lab; {ask}") == "AVX2"
    assert _capability({"ATEN_CPU_CAPABILITY": "default"}, f"import lora_lab; {ask}") == "DEFAULT"
    native = _capability({}, ask)
    assert _capability({"LORA_LAB_NATIVE_KERNELS": "1"}, f"import lora_lab; {ask}") == native
