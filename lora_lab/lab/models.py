"""The experiments' base model: a tiny Vision Transformer made of `lora_lab.lora.attention` blocks.

An 8×8 digit becomes 16 patches of 2×2 pixels plus a class token; two pre-LayerNorm blocks with
`q_proj`, `k_proj`, `v_proj`, `o_proj`, `fc1`, `fc2` (so LoRA finds every W0 by name) and a linear
head on the class token. It is pretrained on digits 0–4; `python -m lora_lab pretrain` builds or
checks the checkpoint, which is committed (about 1 MB, safetensors).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from lora_lab._checks import check_int
from lora_lab.lab.cache import cache_dir, read_tensors, write_tensors
from lora_lab.lora.attention import TransformerBlock
from lora_lab.maths.nf4 import nf4_roundtrip


@dataclass(frozen=True)
class ViTConfig:
    """Sizes of the tiny ViT; the defaults are the course's base model (about 269k parameters)."""

    n_classes: int = 5
    d_model: int = 128
    n_blocks: int = 2
    n_heads: int = 4
    d_ff: int = 256
    patch: int = 2
    image: int = 8

    @property
    def n_patches(self) -> int:
        return (self.image // self.patch) ** 2


class TinyViT(nn.Module):
    """Patches -> linear embedding + class token + positions -> blocks -> LayerNorm -> head.

    Shapes: x (B, 1, image, image) -> logits (B, n_classes).
    """

    def __init__(self, config: ViTConfig = ViTConfig()):
        super().__init__()
        check_int("d_model", config.d_model, low=1)
        if config.image % config.patch:
            raise ValueError(f"patch must divide image={config.image}, got patch={config.patch}")
        self.config = config
        d = config.d_model
        self.patch_embed = nn.Linear(config.patch ** 2, d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(0.02 * torch.randn(1, config.n_patches + 1, d))
        self.blocks = nn.ModuleList(TransformerBlock(d, config.n_heads, config.d_ff)
                                    for _ in range(config.n_blocks))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, check_int("n_classes", config.n_classes, low=2))

    def patches(self, x: Tensor) -> Tensor:
        """Cut images into non-overlapping patches.  Shapes: (B, 1, H, W) -> (B, n_patches, p*p)."""
        if x.dim() != 4 or x.shape[1:] != (1, self.config.image, self.config.image):
            raise ValueError(f"x must have shape (batch, 1, {self.config.image}, {self.config.image}), "
                             f"got {tuple(x.shape)}")
        B, p, n = x.shape[0], self.config.patch, self.config.image // self.config.patch
        x = x.reshape(B, n, p, n, p)  # (B, rows, p, cols, p)
        return x.permute(0, 1, 3, 2, 4).reshape(B, n * n, p * p)  # (B, n_patches, p*p)

    def features(self, x: Tensor) -> Tensor:
        """The class token's final representation.  Shapes: (B, 1, H, W) -> (B, d_model)."""
        tokens = self.patch_embed(self.patches(x))  # (B, n_patches, d)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)  # (B, 1, d)
        h = torch.cat([cls, tokens], dim=1) + self.pos_embed  # (B, 1 + n_patches, d)
        for block in self.blocks:
            h = block(h)
        return self.norm(h[:, 0])  # (B, d)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def new_head(model: TinyViT, n_classes: int, seed: int = 0) -> TinyViT:
    """A copy of `model` with a freshly initialised head for `n_classes` (seeded); the body is shared
    by value, not by reference, so the original stays untouched."""
    model = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    head = nn.Linear(model.config.d_model, check_int("n_classes", n_classes, low=2))
    bound = 1.0 / model.config.d_model ** 0.5  # nn.Linear's default range, from our generator
    with torch.no_grad():
        head.weight.uniform_(-bound, bound, generator=gen)
        head.bias.uniform_(-bound, bound, generator=gen)
    model.head = head
    model.config = ViTConfig(**{**asdict(model.config), "n_classes": n_classes})
    return model


@torch.no_grad()
def quantize_body_nf4(model: nn.Module, block_size: int = 64) -> nn.Module:
    """Round every nn.Linear weight except the head's to NF4 and back, in place (simulated QLoRA)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name != "head":
            module.weight.copy_(nf4_roundtrip(module.weight, block_size))
    return model


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (hex)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ---- the committed base checkpoint -------------------------------------------------------------

#: How the base model is pretrained on digits 0–4 (`pretrain()`); changing this changes the file.
#: On two threads, as when the committed checkpoint (BASE_SHA256) was made.
PRETRAIN = {"epochs": 30, "lr": 2e-3, "batch_size": 32, "weight_decay": 0.05, "cosine": True, "seed": 0,
            "threads": 2}
BASE_FILE = "base_vit.safetensors"
BASE_PATH = Path(__file__).resolve().parents[1] / "assets" / BASE_FILE
#: SHA-256 of the committed checkpoint: the notebooks check it before they use the model.
BASE_SHA256 = "6e828f98a9921836ca8922f2f6a3288c522740724fa33ace212dd3b9ec1f0f18"


def checkpoint_path() -> Path:
    """The committed checkpoint if it is there, else the one built on first use in the cache."""
    return BASE_PATH if BASE_PATH.exists() else cache_dir("models") / BASE_FILE


def pretrain(config: ViTConfig = ViTConfig()):
    """Train a fresh TinyViT on digits 0–4 with `PRETRAIN`; return (model, History)."""
    from lora_lab.lab.data import PRETRAIN_TASK, load_task
    from lora_lab.lab.train import fit, make_deterministic

    make_deterministic(PRETRAIN["seed"], PRETRAIN["threads"])
    model = TinyViT(config)
    history = fit(model, load_task(PRETRAIN_TASK), **PRETRAIN)
    return model.eval(), history


def save_model(model: TinyViT, path: Path) -> None:
    """Write the model's weights and its config as a safetensors file (atomically)."""
    write_tensors(path, model.state_dict(), {"config": json.dumps(asdict(model.config))})


def load_model(path: Path) -> TinyViT:
    """A TinyViT rebuilt from a file written by `save_model`."""
    meta, tensors = read_tensors(path)
    model = TinyViT(ViTConfig(**json.loads(meta["config"])))
    model.load_state_dict(tensors)
    return model.eval()


def base_model() -> TinyViT:
    """The pretrained base (digits 0–4), frozen nowhere: callers decide what trains.

    Loads the committed checkpoint; if it is missing, pretrains (deterministic) and caches it.
    """
    path = checkpoint_path()
    if not path.exists():
        save_model(pretrain()[0], path)
    return load_model(path)


def pretrain_command() -> str:
    """`python -m lora_lab pretrain`: build the checkpoint if missing, check it; one line."""
    path, built = checkpoint_path(), False
    if not path.exists():
        save_model(pretrain()[0], path)
        built = True
    from lora_lab.lab.data import PRETRAIN_TASK, load_task
    from lora_lab.lab.train import accuracy

    task = load_task(PRETRAIN_TASK)
    acc = accuracy(load_model(path), task.x_test, task.y_test)
    digest = file_sha256(path)
    verdict = "matches the recorded hash" if digest == BASE_SHA256 else "differs from the recorded hash"
    return (f"{'built' if built else 'found'} {path} · sha256 {digest[:12]}… ({verdict}) · "
            f"test accuracy on digits 0-4: {acc:.3f}")
