"""`make bench`: every benchmark of the course, one after the other, printing ratios.

    python -m benchmarks                 layers, sliders, threads, kernels, φ, notebooks (capstone
                                         apart), GPU if any
    python -m benchmarks layers sliders  only some of them
    BENCH_CAPSTONE=1 python -m benchmarks notebooks   also time the capstone (adds ≈ 3 min)
"""

from __future__ import annotations

import platform
import sys
from datetime import date

import torch

from benchmarks import bench_gpu, bench_kernels, bench_layers, bench_notebooks, bench_sliders, bench_threads

SUITES = {"layers": bench_layers.main, "sliders": bench_sliders.main, "threads": bench_threads.main,
          "kernels": bench_kernels.main,
          "notebooks": bench_notebooks.main, "gpu": lambda: bench_gpu.main([])}


def main(argv: list[str]) -> int:
    unknown = [a for a in argv if a not in SUITES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {list(SUITES)}", file=sys.stderr)
        return 2
    torch.set_num_threads(2)
    print(f"# LoRA Lab benchmarks · {date.today()} · {platform.processor() or platform.machine()} · "
          f"torch {torch.__version__} · {torch.get_num_threads()} threads")
    for name in argv or SUITES:
        SUITES[name]()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
