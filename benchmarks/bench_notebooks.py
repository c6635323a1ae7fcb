"""The run time of every notebook under strict nbval, and of the whole core course (capstone apart).

Three passes, side by side in one run:
- **empty cache**: each notebook on a fresh kernel, one after the other, with an empty runs cache
  (a temporary `LORA_LAB_CACHE` that shares only the converted LLM), so every experiment trains:
  a learner's first Run All;
- **filled cache**: the same again, now reading the runs the first pass trained, as `make test`'s
  nbval does after the unit tests (which execute every master through nbgrader) filled it;
- **make test's way**: the core notebooks at once on two workers (`pytest -n 2 --dist loadfile`,
  what `make test-notebooks` runs), filled cache: the wall time of that step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import print_table

ROOT = Path(__file__).resolve().parent.parent
CAPSTONE = "09_capstone_real_llm"
BUDGET_S = 240
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "notebooks/sanitize.cfg")]


def _env(cache: Path) -> dict:
    return dict(os.environ, LORA_LAB_OFFLINE="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                OMP_WAIT_POLICY="PASSIVE", LORA_LAB_CACHE=str(cache))


def nbval_seconds(notebooks: list[Path], cache: Path, workers: int = 0) -> tuple[float, bool]:
    """Wall seconds of one `pytest --nbval` over `notebooks` (fresh kernels), and whether it passed."""
    cmd = [sys.executable, "-m", "pytest", "-q", *NBVAL, *(["-n", str(workers), "--dist", "loadfile"]
                                                          if workers else []), *map(str, notebooks)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=_env(cache), capture_output=True, text=True)
    return time.perf_counter() - start, done.returncode == 0


def _cache_sharing_the_llm(folder: Path) -> Path:
    """An empty course cache whose `llm/` is the real one (converted once at install)."""
    from lora_lab.lab.cache import cache_dir

    (folder / "runs").mkdir(parents=True)
    if cache_dir("llm").exists():
        (folder / "llm").symlink_to(cache_dir("llm").resolve(), target_is_directory=True)
    return folder


def main() -> None:
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    timed = [nb for nb in notebooks if nb.stem != CAPSTONE or os.environ.get("BENCH_CAPSTONE")]
    core = [nb for nb in notebooks if nb.stem != CAPSTONE]
    with tempfile.TemporaryDirectory() as tmp:
        cache = _cache_sharing_the_llm(Path(tmp) / "cache")
        passes = {name: {nb.stem: nbval_seconds([nb], cache) for nb in timed} for name in ("empty", "filled")}
        parallel, parallel_ok = nbval_seconds(core, cache, workers=2)
    rows = []
    for nb in notebooks:
        cells = [passes[p].get(nb.stem) for p in ("empty", "filled")]
        if cells[0] is None:
            rows.append((nb.stem, "not timed", "not timed", "set BENCH_CAPSTONE=1"))
            continue
        rows.append((nb.stem, *(f"{s:.1f}" for s, _ in cells),
                     "pass" if all(ok for _, ok in cells) else "FAIL"))
    sums = [sum(passes[p][nb.stem][0] for nb in core) for p in ("empty", "filled")]
    rows.append(("core course, one after the other", *(f"{s:.1f}" for s in sums), f"goal ≤ {BUDGET_S} s"))
    rows.append(("core course, 2 workers (make test)", "", f"{parallel:.1f}",
                 ("pass" if parallel_ok else "FAIL") + f", goal ≤ {BUDGET_S} s"))
    print_table("notebooks under strict nbval (seconds, each on a fresh kernel)", rows,
                ("notebook", "empty cache", "filled cache", "result"))


if __name__ == "__main__":
    main()
