"""One adaptation run of the course's ViT (`lab.runs`, LoRA q,v r = 4, 5 epochs) trained on one
torch thread and on two, side by side: why `lab.train.fit` trains on `FIT_THREADS` = 1.

Each round trains both (the order alternating), timing wall clock and this process's CPU time;
the table gives the medians and the ratio to one thread. The goal: one thread no slower than two
(at most 1.00×) and using less CPU time; on a 2-core machine that CPU time is what a parallel
`make test` shares out."""

from __future__ import annotations

import statistics
import time

from benchmarks.common import print_table
from lora_lab.lab.data import load_task
from lora_lab.lab.models import base_model
from lora_lab.lab.runs import RunSpec, fit_options, prepare
from lora_lab.lab.train import fit


def train_once(threads: int) -> tuple[float, float]:
    """One ViT adaptation run on `threads` torch threads: (wall seconds, this process's CPU seconds)."""
    spec = RunSpec()
    model = prepare(base_model(), spec)
    wall, cpu = time.perf_counter(), time.process_time()
    fit(model, load_task(spec.task), **{**fit_options(spec), "threads": threads})
    return time.perf_counter() - wall, time.process_time() - cpu


def main(rounds: int = 5) -> None:
    train_once(1), train_once(2)  # warm-up: data, base checkpoint, kernels
    samples = {1: [], 2: []}
    for i in range(rounds):
        for threads in ((1, 2) if i % 2 == 0 else (2, 1)):
            samples[threads].append(train_once(threads))
    wall = {t: statistics.median(w for w, _ in s) for t, s in samples.items()}
    cpu = {t: statistics.median(c for _, c in s) for t, s in samples.items()}
    rows = [(f"{t} thread{'s' if t > 1 else ''}", f"{wall[t]:.2f}", f"{wall[t] / wall[1]:.2f}×",
             f"{cpu[t]:.2f}", f"{cpu[t] / cpu[1]:.2f}×", "" if t > 1 else "≤ 1.00× of two's wall")
            for t in (1, 2)]
    print_table(f"one ViT adaptation run (85 steps), median of {rounds} rounds", rows,
                ("threads", "wall s", "wall ratio", "CPU s", "CPU ratio", "goal"))


if __name__ == "__main__":
    main()
