"""Floor 1, the maths: NumPy and plain arithmetic (no `nn.Module`, no drawing, no training).

`lowrank` (SVD, best rank-r, energy), `subspace` (φ, amplification), `shapes` (real Transformer
shapes), `budget` (parameter, checkpoint and memory counts), `variant_budget` (the variants'
counts), `scale` (DDP/FSDP/ZeRO arithmetic), `nf4` (4-bit NormalFloat levels and rounding),
`paper` (the paper's reported tables as data: Tables 2–6, 15, 16; cited, not re-run).
Imports only `lora_lab._checks`.
"""
