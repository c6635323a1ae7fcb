"""LoRA under torch.distributed: `launcher` starts the ranks, `rank` is what one rank runs."""
