"""The library behind the PyTorch course notebooks: one concept per module."""
