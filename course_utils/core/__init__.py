"""The training loop's parts: devices, the loop itself, checkpoints, plots, check cells, distributed training."""
