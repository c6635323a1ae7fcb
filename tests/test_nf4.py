"""NF4: QLoRA's 16 levels, blockwise absmax rounding, storage cost; equal to bitsandbytes where installed."""

import pytest
import torch

from lora_lab.maths import nf4

#: The NF4 levels as bitsandbytes (and the QLoRA paper's appendix) list them.
BNB_NF4 = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
           -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
           0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
           0.7229568362236023, 1.0]


def test_levels_are_the_published_nf4_table():
    levels = nf4.nf4_levels()
    assert levels.shape == (16,) and levels.dtype == torch.float32
    torch.testing.assert_close(levels, torch.tensor(BNB_NF4), rtol=0, atol=1e-6)
    assert (levels == 0).sum() == 1 and (levels > 0).sum() == 8  # asymmetric: 8 positive, 7 negative


def test_roundtrip_lands_on_levels_times_absmax_and_keeps_each_block_absmax():
    w = torch.randn(10, 13, generator=torch.Generator().manual_seed(0))
    codes, absmax = nf4.quantize(w, block_size=16)
    assert codes.dtype == torch.uint8 and codes.numel() == 130 and int(codes.max()) < 16
    assert absmax.shape == (9,)  # ceil(130 / 16): the last block is partial
    back = nf4.nf4_roundtrip(w, block_size=16)
    assert back.shape == w.shape
    flat, wf = back.reshape(-1), w.reshape(-1)
    for b in range(9):  # the largest entry of each block is stored exactly (level ±1)
        block = slice(16 * b, 16 * (b + 1))
        i = wf[block].abs().argmax()
        assert flat[block][i] == pytest.approx(float(wf[block][i]), rel=1e-6)


def test_rounding_is_to_the_nearest_level():
    w = torch.randn(256, generator=torch.Generator().manual_seed(1))
    levels = nf4.nf4_levels()
    back = nf4.nf4_roundtrip(w, block_size=64).reshape(4, 64)
    absmax = w.reshape(4, 64).abs().amax(dim=1, keepdim=True)
    nearest = levels[(w.reshape(4, 64, 1) / absmax[..., None] - levels).abs().argmin(-1)] * absmax
    torch.testing.assert_close(back, nearest)


def test_nf4_beats_a_uniform_int4_grid_on_normal_weights():
    w = torch.randn(4096, generator=torch.Generator().manual_seed(2))
    err_nf4 = nf4.roundtrip_error(w)
    err_int4 = nf4.roundtrip_error(w, levels=nf4.int4_levels())
    assert 0 < err_nf4 < err_int4 < 0.2


def test_bits_per_param_matches_qlora():
    assert nf4.bits_per_param(64) == 4.5  # 4 + 32/64
    assert nf4.bits_per_param(64, double_quant=True) == pytest.approx(4.127, abs=5e-4)  # QLoRA §3


def test_bad_input_is_refused():
    with pytest.raises(TypeError, match="floating-point"):
        nf4.quantize(torch.arange(4))
    with pytest.raises(ValueError, match="must not be empty"):
        nf4.quantize(torch.zeros(0))
    with pytest.raises(ValueError, match="block_size must be an integer"):
        nf4.quantize(torch.zeros(4), block_size=0)
    codes, absmax = nf4.quantize(torch.ones(8), block_size=4)
    with pytest.raises(ValueError, match="do not fit shape"):
        nf4.dequantize(codes, absmax, (3, 3), block_size=4)


def test_equal_to_bitsandbytes_when_installed():
    functional = pytest.importorskip("bitsandbytes.functional")
    w = torch.randn(37, 53, generator=torch.Generator().manual_seed(3))
    packed, state = functional.quantize_4bit(w, blocksize=64, quant_type="nf4")
    torch.testing.assert_close(state.code.float(), nf4.nf4_levels(), rtol=0, atol=1e-6)
    codes, absmax = nf4.quantize(w)
    torch.testing.assert_close(state.absmax, absmax)
    unpacked = torch.stack([packed.reshape(-1) >> 4, packed.reshape(-1) & 15], 1).reshape(-1)
    assert torch.equal(unpacked[:codes.numel()], codes)
    back = functional.dequantize_4bit(packed, state)
    torch.testing.assert_close(back, nf4.nf4_roundtrip(w), atol=1e-6, rtol=0)
