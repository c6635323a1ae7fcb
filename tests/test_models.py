"""The tiny ViT: patches, shapes, names LoRA can target, a new head, the committed checkpoint."""

import pytest
import torch

from lora_lab.lab.data import load_task
from lora_lab.lab.models import (
    BASE_PATH,
    BASE_SHA256,
    TinyViT,
    ViTConfig,
    base_model,
    file_sha256,
    load_model,
    new_head,
    pretrain_command,
    save_model,
)
from lora_lab.lab.train import accuracy
from lora_lab.lora.inject import add_lora, count_parameters, linear_names

TINY = ViTConfig(d_model=16, n_blocks=1, n_heads=2, d_ff=32)


def _tiny(seed=0):
    torch.manual_seed(seed)
    return TinyViT(TINY).eval()


def test_patches_are_2x2_blocks_in_reading_order():
    x = torch.arange(64.0).view(1, 1, 8, 8)
    p = _tiny().patches(x)
    assert p.shape == (1, 16, 4)
    assert p[0, 0].tolist() == [0, 1, 8, 9]        # top-left block
    assert p[0, 1].tolist() == [2, 3, 10, 11]      # its right neighbour
    assert p[0, 4].tolist() == [16, 17, 24, 25]    # first block of the second block-row


def test_forward_shape_and_bad_input():
    model = _tiny()
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 5)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 8, 8\)"):
        model(torch.rand(3, 8, 8))


def test_patch_must_divide_the_image():
    with pytest.raises(ValueError, match="patch must divide image=8, got patch=3"):
        TinyViT(ViTConfig(patch=3))


def test_default_size_and_names_lora_can_target():
    model = TinyViT()
    assert count_parameters(model) == (268_805, 268_805)
    names = linear_names(model)
    for i in range(2):
        for m in ["attn.q_proj", "attn.k_proj", "attn.v_proj", "attn.o_proj", "mlp.fc1", "mlp.fc2"]:
            assert f"blocks.{i}.{m}" in names
    add_lora(model, ["q_proj", "v_proj"], r=4)
    assert count_parameters(model)[0] == 2 * 2 * 4 * (128 + 128)  # 2 blocks · (Wq, Wv) · r(d_in + d_out)


def test_new_head_is_seeded_and_leaves_the_original_alone():
    model = _tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, b, c = new_head(model, 3, seed=1), new_head(model, 3, seed=1), new_head(model, 3, seed=2)
    assert a.head.weight.shape == (3, 16) and a.config.n_classes == 3
    assert torch.equal(a.head.weight, b.head.weight) and not torch.equal(a.head.weight, c.head.weight)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert a.blocks[0].attn.q_proj.weight is not model.blocks[0].attn.q_proj.weight
    assert torch.equal(a.features(torch.ones(1, 1, 8, 8)), model.features(torch.ones(1, 1, 8, 8)))


def test_save_and_load_round_trip(tmp_path):
    model = _tiny(3)
    save_model(model, tmp_path / "m.safetensors")
    again = load_model(tmp_path / "m.safetensors")
    x = torch.rand(4, 1, 8, 8)
    assert again.config == TINY and torch.equal(again(x), model(x))


def test_committed_checkpoint_is_the_recorded_one_and_knows_digits_0_to_4():
    assert BASE_PATH.exists(), "run `python -m lora_lab pretrain` and commit the checkpoint"
    assert file_sha256(BASE_PATH) == BASE_SHA256
    task = load_task("0-4")
    assert accuracy(base_model(), task.x_test, task.y_test) > 0.95
    line = pretrain_command()
    assert "\n" not in line and "matches the recorded hash" in line
