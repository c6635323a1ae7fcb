"""LoRA Lab: the shared package behind the course's notebooks.

Notebooks teach and show; this package computes. Every module, by what it is for (a test keeps
this map complete; it has grown past ../shared/DESIGN.md's first module map):

- Linear algebra (02): `lowrank`, `planted`.
- The layer and the model surgery (03, 04): `layers` (LoRALinear), `attention`, `inject`,
  `reference` (loralib and PEFT twins to compare against), `trace`.
- Budgets (05, 11): `budget`, `model_shapes`, `scale`, `variant_budget`.
- Experiments (01, 06, 07): `data`, `models`, `train`, `experiments`, `ablations`, `intrinsic`,
  `random_subspace`, `subspace`.
- Deployment and files (08): `adapters`, `deploy`.
- The capstone (09): `llm`.  Descendants (10): `variants`, `variants_peft`, `variant_runs`, `nf4`.
- Scale-out (11): `distributed` (the launcher), `ddp` (one rank).
- For notebooks: `notebook` (`setup_notebook`), `plots`, `widgets` and `exercises` (subpackages,
  one submodule per topic).
- Chores: `assignments` (nbgrader metadata, student copies), `figures`, `_checks` (argument
  checks), `__main__` (`python -m lora_lab student | figures | pretrain | prepare-llm`).
"""

from lora_lab.notebook import setup_notebook

__all__ = ["setup_notebook"]
__version__ = "0.1.0"
