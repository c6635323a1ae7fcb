"""Floor 3, the lab: data, models, training and the runs of the experiments.

`cache` (the cache root, one folder per kind, atomic writes), `data` (the digits tasks),
`models` (the tiny ViT and its checkpoint), `train` (`fit`), `runs` (`RunSpec`, `run`,
`cached_run`: every run of the course, LoRA's variants included, one session memo and one disk
cache), `readouts` (what notebooks read from runs), `ablations`, `planted` (the planted-rank
toy), `intrinsic` (intrinsic dimension of an MLP), `random_subspace` (training in a random
subspace), `step_cost` (a step's FLOPs and saved bytes), `since2021` (notebook 12), `llm` (the
capstone's SmolLM2), `ddp` (`launcher` starts the ranks through torchrun, `torchrun` builds its
command line, `rank` is one rank, `cache` remembers a launch's results).
Imports only `lora`, `maths` and `_checks`.
"""
