"""LoRA under torch.distributed: `launcher` measures a DDP run and returns its results, `torchrun`
writes and runs PyTorch's launcher command that starts the ranks, `rank` is what one rank runs, and
`cache` keeps a launch's results in the runs cache (`cached_launch_all`)."""
