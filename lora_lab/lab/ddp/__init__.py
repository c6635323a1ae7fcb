"""LoRA under torch.distributed: `launcher` measures a DDP run and returns its results, `torchrun`
writes and runs PyTorch's launcher command that starts the ranks, `rank` is what one rank runs."""
