"""Convolution arithmetic (output sizes, parameter counts) and the residual block of a ResNet."""

from __future__ import annotations

import math

import torch
from torch import nn

from course_utils.core.arguments import check_count

Size = int | tuple[int, ...]


def _as_tuple(name: str, value: Size, ndim: int) -> tuple[int, ...]:
    """`value` repeated to `ndim` entries (an int) or checked to have `ndim` entries (a tuple)."""
    if isinstance(value, bool) or not isinstance(value, (int, tuple, list)):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r}")
    values = (value,) * ndim if isinstance(value, int) else tuple(value)
    if len(values) != ndim or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{name} must be an int or {ndim} ints, got {value!r}")
    return values


def _broadcast(**arguments: Size) -> tuple[list[dict[str, int]], bool]:
    """Per spatial dimension, the arguments as ints; also whether any argument was a tuple."""
    tuples = [len(v) for v in arguments.values() if isinstance(v, (tuple, list))]
    if len(set(tuples)) > 1:
        raise ValueError(f"tuple arguments must have the same length, got {arguments}")
    ndim = tuples[0] if tuples else 1
    columns = {name: _as_tuple(name, value, ndim) for name, value in arguments.items()}
    return [{name: col[i] for name, col in columns.items()} for i in range(ndim)], bool(tuples)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        check_count(name, value)


def _result(sizes: list[int], as_tuple: bool, what: str) -> Size:
    if any(s < 1 for s in sizes):
        raise ValueError(f"{what} output size would be {tuple(sizes) if as_tuple else sizes[0]}: "
                         "the input is too small for this kernel, stride, padding and dilation")
    return tuple(sizes) if as_tuple else sizes[0]


def conv_output_size(size: Size, kernel_size: Size, stride: Size = 1, padding: Size | str = 0,
                     dilation: Size = 1) -> Size:
    """Output height/width of nn.Conv1d/2d/3d: floor((W + 2P - D*(F-1) - 1) / S) + 1 per dimension.

    `padding` may also be "valid" (no padding) or "same" (output size = input size; stride must be 1).
    An int argument gives an int; any tuple argument gives a tuple.
    """
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            dims, as_tuple = _broadcast(size=size, stride=stride)
            if any(d["stride"] != 1 for d in dims):
                raise ValueError("padding='same' needs stride 1 (PyTorch refuses it for strided convolutions)")
            return _result([d["size"] for d in dims], as_tuple, "convolution")
        else:
            raise ValueError(f"padding must be an int, a tuple, 'valid' or 'same', got {padding!r}")
    dims, as_tuple = _broadcast(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                                   dilation=dilation)
    sizes = []
    for d in dims:
        _check_positive(size=d["size"], kernel_size=d["kernel_size"], stride=d["stride"], dilation=d["dilation"])
        if d["padding"] < 0:
            raise ValueError(f"padding must be >= 0, got {d['padding']}")
        span = d["dilation"] * (d["kernel_size"] - 1) + 1  # the kernel's footprint on the input
        sizes.append((d["size"] + 2 * d["padding"] - span) // d["stride"] + 1)
    return _result(sizes, as_tuple, "convolution")


def pool_output_size(size: Size, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
                     dilation: Size = 1, ceil_mode: bool = False) -> Size:
    """Output height/width of nn.MaxPool1d/2d/3d (stride defaults to kernel_size, as in PyTorch)."""
    stride = kernel_size if stride is None else stride
    dims, as_tuple = _broadcast(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                                   dilation=dilation)
    sizes = []
    for d in dims:
        _check_positive(size=d["size"], kernel_size=d["kernel_size"], stride=d["stride"], dilation=d["dilation"])
        if not 0 <= d["padding"] <= d["kernel_size"] // 2:
            raise ValueError(f"pool padding must be between 0 and half the kernel size, got {d['padding']}")
        span = d["dilation"] * (d["kernel_size"] - 1) + 1
        room = d["size"] + 2 * d["padding"] - span
        out = (math.ceil(room / d["stride"]) if ceil_mode else room // d["stride"]) + 1
        # with ceil_mode the last window must still start inside the input or the left padding
        if ceil_mode and (out - 1) * d["stride"] >= d["size"] + d["padding"]:
            out -= 1
        sizes.append(out)
    return _result(sizes, as_tuple, "pooling")


def conv_transpose_output_size(size: Size, kernel_size: Size, stride: Size = 1, padding: Size = 0,
                               output_padding: Size = 0, dilation: Size = 1) -> Size:
    """Output height/width of nn.ConvTranspose1d/2d/3d: (W-1)*S - 2P + D*(F-1) + output_padding + 1."""
    dims, as_tuple = _broadcast(size=size, kernel_size=kernel_size, stride=stride, padding=padding,
                                   output_padding=output_padding, dilation=dilation)
    sizes = []
    for d in dims:
        _check_positive(size=d["size"], kernel_size=d["kernel_size"], stride=d["stride"], dilation=d["dilation"])
        if d["padding"] < 0:
            raise ValueError(f"padding must be >= 0, got {d['padding']}")
        if not 0 <= d["output_padding"] < max(d["stride"], d["dilation"]):
            raise ValueError(f"output_padding must be smaller than stride or dilation, got {d['output_padding']} "
                             f"with stride {d['stride']} and dilation {d['dilation']}")
        sizes.append((d["size"] - 1) * d["stride"] - 2 * d["padding"] + d["dilation"] * (d["kernel_size"] - 1)
                     + d["output_padding"] + 1)
    return _result(sizes, as_tuple, "transpose convolution")


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """The padding that keeps the size at stride 1: D*(F-1)/2, defined for odd kernels (F=3 -> 1, F=5 -> 2)."""
    _check_positive(kernel_size=kernel_size, dilation=dilation)
    span = dilation * (kernel_size - 1)
    if span % 2:
        raise ValueError(f"kernel_size {kernel_size} with dilation {dilation} has no symmetric 'same' padding; "
                         "use an odd kernel size (or padding='same', which pads one side more)")
    return span // 2


def conv_num_parameters(in_channels: int, out_channels: int, kernel_size: Size, groups: int = 1,
                        bias: bool = True) -> int:
    """Weights and biases of nn.Conv2d (and of nn.ConvTranspose2d): C_out*(C_in/groups*kH*kW) + C_out."""
    _check_positive(in_channels=in_channels, out_channels=out_channels, groups=groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide both in_channels={in_channels} and "
                         f"out_channels={out_channels}")
    kernel = _as_tuple("kernel_size", kernel_size, 2) if isinstance(kernel_size, int) else tuple(kernel_size)
    _check_positive(**{f"kernel_size[{i}]": k for i, k in enumerate(kernel)})
    weights = out_channels * (in_channels // groups) * math.prod(kernel)
    return weights + (out_channels if bias else 0)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters in `model`."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


class ResidualBlock(nn.Module):
    """Two 3x3 conv + batch-norm layers with a shortcut: relu(F(x) + shortcut(x)) (He et al., 2015).

    The shortcut is the identity when the shape is unchanged, else a 1x1 convolution with the
    block's stride plus batch norm (a projection) so that the two branches can be added.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, stride: int = 1):
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        _check_positive(in_channels=in_channels, out_channels=out_channels, stride=stride)
        # bias=False: the batch norm that follows subtracts the mean, and its beta is the bias
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride == 1 and in_channels == out_channels:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))  # F(x)
        return torch.relu(residual + self.shortcut(x))
