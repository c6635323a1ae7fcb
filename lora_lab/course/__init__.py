"""Floor 5, what only a course needs: `notebook` (the set-up call), `exercises` (checkers),
`assignments` (student copies, nbgrader), `figures` (the recipes behind `make figures`) and
`cli` (`python -m lora_lab`). May import every floor below.
"""
