"""LoRA Lab: the shared package behind the course's notebooks.

Notebooks teach and show; this package computes. One floor per layer, each importing only the
floors below it (tests/test_layout.py reads the import graph and fails on an upward import):

- `_checks`: argument checks and their messages, shared by every floor.
- `_kernels`: caps torch's CPU kernels at AVX2 before torch is imported, so that an AVX-512
  machine computes the stored outputs bit for bit as an AVX2 machine does.
- `maths`: NumPy and arithmetic — `lowrank`, `subspace`, `shapes`, `budget`, `variant_budget`,
  `scale`, `nf4`, `paper` (the paper's reported tables, as data), `intruders` (intruder
  dimensions), `sweep` (the best rate of a sweep).
- `lora`: LoRA in torch — `layer` (`LoRALinear`), `fused`, `attention`, `inject`, `variants`,
  `adapters`, `adapter_spec`, `peft_export`, `peft`, `peft_variants`, `trace`, `deploy`.
- `lab`: the experiments — `cache`, `data`, `models`, `train`, `runs`, `readouts`, `ablations`,
  `planted`, `intrinsic`, `random_subspace`, `step_cost`, `since2021`, `since2021_cache` (its
  scores, kept beside each run), `llm`, `llm_runs` (the capstone's fine-tunes, cached), `ddp`
  (`launcher`, `torchrun`, `rank`, `cache`).
- `views`: figures and controls that take results and draw — `plots`, `widgets`.
- `course`: what only a course needs — `notebook` (`setup_notebook`), `i18n` (the checkers'
  messages in English and Chinese), `exercises`, `assignments`, `figures`, `translation`,
  `zh_edition` and `zh_glossary` (the Chinese edition), `cli` (`python -m lora_lab`, through
  `__main__`).
"""

from lora_lab import _kernels

_kernels.pin()  # before anything imports torch

from lora_lab.course.notebook import setup_notebook  # noqa: E402

__all__ = ["setup_notebook"]
__version__ = "0.1.0"
