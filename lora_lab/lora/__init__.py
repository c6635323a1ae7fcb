"""Floor 2, LoRA in torch: the layer, the model surgery, the variants and the files.

`layer` (`LoRALinear`: the paper's equation, readable), `fused` (`FusedLoRALinear`: the same
numbers in fewer passes over memory, opt-in with `add_lora(..., fused=True)`), `attention`
(multi-head attention and the Transformer block, LoRA on Wq, Wk, Wv, Wo), `inject` (`add_lora` by
name, merge, unmerge), `variants` (rsLoRA, DoRA, PiSSA), `adapters` (safetensors files),
`adapter_spec` (what an adapter holds, the base's fingerprint), `peft_export` (the PEFT bridge),
`peft` (the reference twins from PEFT and loralib), `peft_variants` (PEFT's variants, for
comparison), `trace` (which shapes a forward pass creates), `deploy` (serving costs: merged,
unmerged, adapters). Imports only `maths` and `_checks`.
"""

from lora_lab.lora.layer import LoRALinear

__all__ = ["LoRALinear"]
