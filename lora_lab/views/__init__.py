"""Floor 4, the views: `plots` (figures, one submodule per topic) and `widgets` (sliders).

They take results and draw; they never train. Imports `lab`, `lora`, `maths` and `_checks`.
"""
