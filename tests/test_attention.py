"""Multi-head self-attention equals PyTorch's reference; the block is pre-LayerNorm; fused QKV splits."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lora_lab.lora.attention import (
    MLP,
    MultiHeadSelfAttention,
    TransformerBlock,
    from_torch_mha,
    fused_lora_delta,
    split_qkv,
)


def _reference(attn: MultiHeadSelfAttention, x: torch.Tensor, causal: bool) -> torch.Tensor:
    """The same projections around torch's scaled_dot_product_attention."""
    B, T, d = x.shape
    heads = [p(x).view(B, T, attn.n_heads, attn.d_head).transpose(1, 2)  # (B, nh, T, hs)
             for p in (attn.q_proj, attn.k_proj, attn.v_proj)]
    y = F.scaled_dot_product_attention(*heads, is_causal=causal)  # (B, nh, T, hs)
    return attn.o_proj(y.transpose(1, 2).reshape(B, T, d))  # (B, T, d)


@pytest.mark.parametrize(("d_model", "n_heads"), [(8, 1), (8, 2), (12, 3), (16, 16)])
@pytest.mark.parametrize("causal", [False, True])
def test_matches_scaled_dot_product_attention(d_model, n_heads, causal):
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(d_model, n_heads, causal=causal)
    x = torch.randn(2, 5, d_model)
    torch.testing.assert_close(attn(x), _reference(attn, x, causal), atol=1e-6, rtol=1e-5)


def test_causal_weights_are_lower_triangular_rows_summing_to_one():
    torch.manual_seed(0)
    w = MultiHeadSelfAttention(8, 2, causal=True).attention_weights(torch.randn(3, 6, 8))
    assert w.shape == (3, 2, 6, 6)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 2, 6))
    assert torch.count_nonzero(w.triu(1)) == 0
    torch.testing.assert_close(w[..., 0, 0], torch.ones(3, 2))  # the first token sees only itself


def test_causal_output_ignores_future_tokens():
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(8, 2, causal=True)
    x = torch.randn(1, 6, 8)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, 8)
    torch.testing.assert_close(attn(x)[:, :4], attn(x2)[:, :4])
    assert not torch.allclose(attn(x)[:, 4:], attn(x2)[:, 4:])


def test_projection_shapes_and_bias_flag():
    attn = MultiHeadSelfAttention(12, 3, bias=False)
    assert attn.d_head == 4
    for p in (attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj):
        assert isinstance(p, nn.Linear) and p.weight.shape == (12, 12) and p.bias is None


@pytest.mark.parametrize(("d_model", "n_heads", "error", "match"), [
    (10, 3, ValueError, "d_model must be divisible by n_heads=3, got d_model=10"),
    (0, 1, ValueError, r"d_model must be an integer in \[1, inf\], got 0"),
    (8, 0, ValueError, r"n_heads must be an integer in \[1, inf\], got 0"),
    (8.0, 2, TypeError, "d_model must be an integer, got 8.0"),
    (8, "2", TypeError, "n_heads must be an integer"),
])
@pytest.mark.parametrize("cls", [MultiHeadSelfAttention, TransformerBlock])
def test_bad_sizes_raise(cls, d_model, n_heads, error, match):
    with pytest.raises(error, match=match):
        cls(d_model, n_heads)


@pytest.mark.parametrize("shape", [(2, 5), (2, 5, 6), (1, 2, 5, 8)])
def test_bad_input_shape_raises(shape):
    attn = MultiHeadSelfAttention(8, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, tokens, d_model=8\)"):
        attn(torch.randn(*shape))
    with pytest.raises(ValueError, match="d_model=8"):
        attn.attention_weights(torch.randn(*shape))


def test_block_is_pre_layernorm_residual():
    torch.manual_seed(0)
    block = TransformerBlock(8, 2, d_ff=16)
    x = torch.randn(2, 4, 8)
    h = x + block.attn(block.ln1(x))
    expected = h + block.mlp.fc2(F.gelu(block.mlp.fc1(block.ln2(h))))
    torch.testing.assert_close(block(x), expected)


def test_block_sizes():
    block = TransformerBlock(8, 2)
    assert block.mlp.fc1.weight.shape == (32, 8) and block.mlp.fc2.weight.shape == (8, 32)
    assert TransformerBlock(8, 2, d_ff=5).mlp.fc1.out_features == 5
    assert TransformerBlock(8, 2, bias=False).mlp.fc1.bias is None


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"d_ff": 0}, ValueError, r"d_ff must be an integer in \[1, inf\], got 0"),
    ({"dropout": 1.0}, ValueError, r"dropout must be in \[0, 1\), got 1.0"),
])
def test_block_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        TransformerBlock(8, 2, **kwargs)


def test_mlp_shapes():
    mlp = MLP(6, 10)
    assert mlp(torch.randn(3, 6)).shape == (3, 6)
    with pytest.raises(ValueError, match="d_ff must be an integer"):
        MLP(6, -1)


def test_split_qkv_slices_rows_in_order():
    W = torch.arange(6 * 2, dtype=torch.float32).reshape(6, 2)  # (3·d, d_in) with d = 2
    q, k, v = split_qkv(W)
    assert q.shape == k.shape == v.shape == (2, 2)
    torch.testing.assert_close(torch.cat([q, k, v]), W)
    assert q.data_ptr() == W.data_ptr()  # views, not copies


@pytest.mark.parametrize(("value", "error", "match"), [
    (torch.zeros(5, 2), ValueError, r"first dimension must be 3·d .*got shape \(5, 2\)"),
    (torch.zeros(3, 2, 2), ValueError, r"2-D weight .* got shape \(3, 2, 2\)"),
    ([[1.0]], TypeError, "in_proj_weight must be a torch.Tensor, got list"),
])
def test_split_qkv_bad_input(value, error, match):
    with pytest.raises(error, match=match):
        split_qkv(value)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("causal", [False, True])
def test_from_torch_mha_matches_pytorch(bias, causal):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, bias=bias, batch_first=True).eval()
    if bias:
        nn.init.normal_(mha.in_proj_bias)  # PyTorch starts them at zero: make the test see them
    x = torch.randn(2, 5, 8)
    mask = nn.Transformer.generate_square_subsequent_mask(5) if causal else None
    expected, _ = mha(x, x, x, attn_mask=mask, need_weights=False)
    torch.testing.assert_close(from_torch_mha(mha, causal=causal)(x), expected, atol=1e-6, rtol=1e-5)


def test_from_torch_mha_copies_not_shares():
    mha = nn.MultiheadAttention(4, 1)
    attn = from_torch_mha(mha)
    with torch.no_grad():
        attn.q_proj.weight.zero_()
    assert mha.in_proj_weight.abs().sum() > 0


def test_from_torch_mha_rejects():
    with pytest.raises(TypeError, match="mha must be an nn.MultiheadAttention, got Linear"):
        from_torch_mha(nn.Linear(4, 4))
    with pytest.raises(ValueError, match="one fused in_proj_weight"):
        from_torch_mha(nn.MultiheadAttention(4, 1, kdim=3, vdim=3))
    with pytest.raises(ValueError, match="add_bias_kv"):
        from_torch_mha(nn.MultiheadAttention(4, 1, add_bias_kv=True))


@pytest.mark.parametrize("enable", [[True, False, True], [True, True, True], [False, True, False]])
def test_fused_lora_delta_equals_loralib_merged_linear(enable):
    loralib = pytest.importorskip("loralib")
    torch.manual_seed(0)
    layer = loralib.MergedLinear(8, 24, r=2, lora_alpha=6, enable_lora=enable)
    nn.init.normal_(layer.lora_B)  # B starts at zero: give it values
    expected = layer.merge_AB() * layer.scaling  # (24, 8)
    got = fused_lora_delta(layer.lora_A, layer.lora_B, enable, layer.scaling)
    torch.testing.assert_close(got, expected)
    for i, on in enumerate(enable):  # a disabled part keeps its W0 exactly
        assert bool(got[8 * i: 8 * (i + 1)].abs().sum() > 0) == on


def test_fused_lora_delta_blocks_by_hand():
    A, B = torch.randn(4, 5), torch.randn(6, 2)  # two enabled parts, r = 2, d = 3, d_in = 5
    delta = fused_lora_delta(A, B, (True, False, True), scaling=0.5)
    assert delta.shape == (9, 5)
    torch.testing.assert_close(delta[:3], 0.5 * B[:3] @ A[:2])
    torch.testing.assert_close(delta[3:6], torch.zeros(3, 5))
    torch.testing.assert_close(delta[6:], 0.5 * B[3:] @ A[2:])


@pytest.mark.parametrize(("A", "B", "enable", "match"), [
    (torch.zeros(4, 5), torch.zeros(6, 2), (False, False, False), "k = sum.* = 0"),
    (torch.zeros(3, 5), torch.zeros(6, 2), (True, False, True), r"got A \(3, 5\), B \(6, 2\)"),
    (torch.zeros(4, 5), torch.zeros(6, 3), (True, False, True), r"B must have r = 2 columns"),
])
def test_fused_lora_delta_bad_shapes(A, B, enable, match):
    with pytest.raises(ValueError, match=match):
        fused_lora_delta(A, B, enable)
