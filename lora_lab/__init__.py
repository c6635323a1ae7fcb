"""LoRA Lab: the shared package behind the course's notebooks.

Notebooks teach and show; this package computes. Each module holds one idea (see DESIGN.md):
`lowrank`, `layers`, `attention`, `inject`, `adapters`, `budget`, `subspace`, `models`, `data`,
`train`, `plots`, `widgets`, `exercises`.
"""

from lora_lab.notebook import setup_notebook

__all__ = ["setup_notebook"]
__version__ = "0.1.0"
