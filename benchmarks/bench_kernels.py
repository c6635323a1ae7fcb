"""The AVX2 kernel caps that `import lora_lab` sets (`lora_lab/_kernels.py`) against torch's own
choice (`LORA_LAB_NATIVE_KERNELS=1`): what reproducible outputs cost on a CPU with more than AVX2.

torch chooses its kernels once per process, so each measurement is a child process: one ViT
adaptation run (`bench_threads.train_once` on one thread, as `fit` trains: the faster of two
after an untimed one) and 3 training steps of the capstone's SmolLM2 with LoRA on W_q, W_v (2
threads, batch 4 × 128 tokens) after one untimed step (the model from `.cache/llm/`, which
`make bench`'s install prepares). Rounds alternate the order; the table gives medians and the
ratio capped / native. On a CPU whose best is AVX2 both run the same kernels (ratio ≈ 1). The
goal: at most 1.10×."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.common import print_table
from lora_lab import _kernels

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, time
import lora_lab, torch
from benchmarks.bench_threads import train_once
out = {"capability": torch.backends.cpu.get_cpu_capability()}
train_once(1)  # warm-up: data, checkpoint, kernels
out["vit"] = min(train_once(1)[0] for _ in range(2))
from lora_lab.lab import llm
from lora_lab.lora.inject import add_lora
torch.set_num_threads(2)
model, tokenizer = llm.load_smollm2()
add_lora(model, ["q_proj", "v_proj"], r=8, alpha=16)
blocks = llm.make_blocks(tokenizer.encode(llm.read_hamlet()[:60000]), block_size=128)
llm.train_lm(model, blocks, steps=1)
start = time.perf_counter()
llm.train_lm(model, blocks, steps=3)
out["llm"] = (time.perf_counter() - start) / 3
print(json.dumps(out))
"""


def _child(native: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _kernels.PINNED}
    env["LORA_LAB_NATIVE_KERNELS"] = "1" if native else ""
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(rounds: int = 3) -> None:
    samples = {True: [], False: []}
    for i in range(rounds):
        for native in ((True, False) if i % 2 == 0 else (False, True)):
            samples[native].append(_child(native))
    rows = []
    for task, label in (("vit", "ViT run, 85 steps (s)"), ("llm", "SmolLM2 LoRA step (s)")):
        native = statistics.median(s[task] for s in samples[True])
        capped = statistics.median(s[task] for s in samples[False])
        rows.append((label, f"{native:.2f}", f"{capped:.2f}", f"{capped / native:.2f}×", "≤ 1.10×"))
    caps = f"{samples[True][0]['capability']} native, {samples[False][0]['capability']} capped"
    print_table(f"kernel caps ({caps}), median of {rounds} rounds", rows,
                ("run", "native", "capped", "ratio", "goal"))
