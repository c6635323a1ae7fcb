"""The run time of every notebook under strict nbval, and of the whole course (capstone apart)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import print_table

ROOT = Path(__file__).resolve().parent.parent
CAPSTONE = "09_capstone_real_llm"
BUDGET_S = 240


def nbval_seconds(notebook: Path) -> tuple[float, bool]:
    """Wall seconds of `pytest --nbval` on one notebook (a fresh kernel), and whether it passed."""
    env = dict(os.environ, LORA_LAB_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    cmd = [sys.executable, "-m", "pytest", "-q", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", str(ROOT / "notebooks/sanitize.cfg"), str(notebook)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode == 0


def main() -> None:
    rows, core = [], 0.0
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        if nb.stem == CAPSTONE and not os.environ.get("BENCH_CAPSTONE"):
            rows.append((nb.stem, "not timed", "set BENCH_CAPSTONE=1"))
            continue
        seconds, ok = nbval_seconds(nb)
        if nb.stem != CAPSTONE:
            core += seconds
        rows.append((nb.stem, f"{seconds:.1f}", "pass" if ok else "FAIL"))
    rows.append(("whole course without the capstone", f"{core:.1f}", f"goal ≤ {BUDGET_S} s"))
    print_table("notebooks under strict nbval (seconds, each on a fresh kernel)", rows,
                ("notebook", "seconds", "result"))


if __name__ == "__main__":
    main()
