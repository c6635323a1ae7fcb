"""Floor 3, the lab: data, models, training and the named runs of the experiments.

`data` (the digits tasks), `models` (the tiny ViT and its checkpoint), `train` (`fit`), `runs`
(`RunSpec`, `run`, the runs cache), `variant_runs` (notebook 10's runs), `ablations`, `planted`
(the planted-rank toy), `intrinsic` (intrinsic dimension of an MLP), `random_subspace` (training
in a random subspace), `llm` (the capstone's SmolLM2), `ddp` (the launcher and one rank).
Imports only `lora`, `maths` and `_checks`.
"""
