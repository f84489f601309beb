"""Convolution arithmetic checked against real PyTorch layers; the residual block's shapes and gradients."""

import pytest
import torch
from torch import nn

from course_utils.models.layers import (
    ResidualBlock,
    conv_num_parameters,
    conv_output_size,
    conv_transpose_output_size,
    count_parameters,
    pool_output_size,
    same_padding,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: extra threads only add start-up cost (and stall on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _spatial(layer: nn.Module, channels: int, size) -> tuple[int, ...]:
    height, width = (size, size) if isinstance(size, int) else size
    with torch.no_grad():
        return tuple(layer(torch.zeros(1, channels, height, width)).shape[2:])


def _assert_same_size(layer: nn.Module, channels: int, size, formula) -> None:
    """The formula gives the layer's output size, or refuses (ValueError) exactly when the layer does."""
    try:
        expected = _spatial(layer, channels, size)
    except RuntimeError:  # PyTorch refuses an empty output; so must the formula
        with pytest.raises(ValueError, match="too small"):
            formula()
        return
    assert formula() == (expected[0] if isinstance(size, int) else expected)


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    pytest.param(28, 3, 1, 1, 1, id="padding-1-keeps-the-size"),
    pytest.param(28, 5, 1, 0, 1, id="no-padding-shrinks"),
    pytest.param(7, 1, 1, 0, 1, id="1x1-kernel"),
    pytest.param(28, 3, 2, 1, 1, id="stride-2-halves"),
    pytest.param(7, 3, 2, 0, 1, id="odd-size-stride-2-rounds-down"),
    pytest.param(28, 4, 3, 1, 1, id="even-kernel-stride-3"),
    pytest.param(7, 3, 1, 0, 2, id="dilation"),
    pytest.param(28, 4, 2, 1, 2, id="dilation-stride-padding"),
    pytest.param(3, 4, 1, 1, 1, id="padding-makes-room"),
    pytest.param(3, 4, 1, 0, 1, id="kernel-larger-than-input-refused"),
    pytest.param(3, 3, 1, 0, 2, id="dilated-kernel-larger-than-input-refused"),
])
def test_conv_output_size_matches_conv2d(size, kernel, stride, padding, dilation):
    layer = nn.Conv2d(2, 3, kernel, stride=stride, padding=padding, dilation=dilation)
    _assert_same_size(layer, 2, size, lambda: conv_output_size(size, kernel, stride, padding, dilation))


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", [
    ((28, 20), (3, 5), (1, 2), (1, 0), (1, 1)),
    ((32, 17), (5, 3), 2, (2, 1), (2, 1)),
    (28, (3, 1), 1, (1, 0), 1),
])
def test_conv_output_size_tuples(size, kernel, stride, padding, dilation):
    layer = nn.Conv2d(1, 1, kernel, stride=stride, padding=padding, dilation=dilation)
    assert conv_output_size(size, kernel, stride, padding, dilation) == _spatial(layer, 1, size)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("size, kernel, dilation", [
    pytest.param(28, 3, 1, id="odd-kernel"),
    pytest.param(28, 4, 1, id="even-kernel"),
    pytest.param(7, 1, 1, id="1x1-kernel"),
    pytest.param(7, 2, 2, id="even-kernel-dilated"),
    pytest.param(7, 5, 2, id="dilated-larger-than-input-valid-refused"),
])
def test_same_and_valid_padding(size, kernel, dilation):
    same = nn.Conv2d(1, 1, kernel, padding="same", dilation=dilation)
    valid = nn.Conv2d(1, 1, kernel, padding="valid", dilation=dilation)
    assert conv_output_size(size, kernel, padding="same", dilation=dilation) == _spatial(same, 1, size)[0] == size
    _assert_same_size(valid, 1, size, lambda: conv_output_size(size, kernel, padding="valid", dilation=dilation))


@pytest.mark.parametrize("kernel, dilation", [(1, 1), (3, 1), (5, 1), (7, 1), (3, 2), (5, 3), (2, 2)])
def test_same_padding_keeps_the_size(kernel, dilation):
    padding = same_padding(kernel, dilation)
    layer = nn.Conv2d(1, 1, kernel, padding=padding, dilation=dilation)
    assert _spatial(layer, 1, 28) == (28, 28)


def test_same_padding_refuses_even_kernels():
    with pytest.raises(ValueError, match="odd kernel"):
        same_padding(4)


def test_same_padding_refuses_stride_like_pytorch():
    with pytest.raises(ValueError, match="stride 1"):
        conv_output_size(28, 3, stride=2, padding="same")
    with pytest.raises(ValueError):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")


@pytest.mark.parametrize("size, kernel, stride, padding, dilation, ceil_mode", [
    pytest.param(28, 2, None, 0, 1, False, id="stride-defaults-to-kernel"),
    pytest.param(7, 2, None, 0, 1, False, id="odd-size-rounds-down"),
    pytest.param(7, 2, None, 0, 1, True, id="odd-size-ceil-mode-rounds-up"),
    pytest.param(28, 3, 1, 1, 1, False, id="stride-1-padding-keeps-the-size"),
    pytest.param(7, 3, 2, 1, 1, True, id="padding-and-ceil-mode"),
    pytest.param(5, 2, 3, 1, 1, True, id="ceil-mode-window-starting-in-padding-dropped"),
    pytest.param(7, 2, 1, 0, 2, False, id="dilation"),
    pytest.param(1, 2, None, 0, 1, False, id="input-smaller-than-kernel-refused"),
])
def test_pool_output_size_matches_maxpool2d(size, kernel, stride, padding, dilation, ceil_mode):
    layer = nn.MaxPool2d(kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
    _assert_same_size(layer, 1, size, lambda: pool_output_size(size, kernel, stride, padding, dilation, ceil_mode))


@pytest.mark.parametrize("size, kernel, stride, padding, output_padding, dilation", [
    pytest.param(7, 3, 1, 0, 0, 1, id="stride-1-grows-by-kernel-minus-1"),
    pytest.param(7, 4, 2, 1, 0, 1, id="kernel-4-stride-2-doubles"),
    pytest.param(4, 3, 2, 1, 1, 1, id="output-padding-picks-the-even-size"),
    pytest.param(1, 1, 3, 0, 2, 1, id="output-padding-up-to-stride-minus-1"),
    pytest.param(7, 3, 2, 1, 0, 2, id="dilation"),
    pytest.param(1, 2, 1, 0, 1, 2, id="output-padding-below-dilation-at-stride-1"),
    pytest.param(1, 3, 1, 2, 0, 1, id="padding-leaves-nothing-refused"),
])
def test_conv_transpose_output_size_matches_layer(size, kernel, stride, padding, output_padding, dilation):
    layer = nn.ConvTranspose2d(2, 3, kernel, stride=stride, padding=padding, output_padding=output_padding,
                               dilation=dilation)
    _assert_same_size(layer, 2, size,
                      lambda: conv_transpose_output_size(size, kernel, stride, padding, output_padding, dilation))


def test_conv_transpose_undoes_a_strided_conv():
    # a 4x4 kernel, stride 2, padding 1 halves an even size, and the transpose doubles it back
    assert conv_output_size(28, 4, 2, 1) == 14
    assert conv_transpose_output_size(14, 4, 2, 1) == 28
    # an odd size needs output_padding to come back: 7 -> 4 -> 7
    assert conv_output_size(7, 3, 2, 1) == 4
    assert conv_transpose_output_size(4, 3, 2, 1) == 7
    assert conv_transpose_output_size(4, 3, 2, 1, output_padding=1) == 8


@pytest.mark.parametrize("in_channels, out_channels, kernel, groups, bias", [
    pytest.param(1, 4, 3, 1, True, id="one-input-channel"),
    pytest.param(6, 4, 1, 1, False, id="1x1-no-bias"),
    pytest.param(6, 4, (3, 1), 2, False, id="groups-and-a-non-square-kernel"),
    pytest.param(4, 4, 3, 4, True, id="depthwise"),
    pytest.param(6, 4, 3, 4, True, id="in-channels-not-divisible-refused"),
    pytest.param(4, 6, 3, 4, True, id="out-channels-not-divisible-refused"),
])
def test_conv_num_parameters_matches_conv2d(in_channels, out_channels, kernel, groups, bias):
    if in_channels % groups or out_channels % groups:
        with pytest.raises(ValueError, match="groups"):
            conv_num_parameters(in_channels, out_channels, kernel, groups, bias)
        return
    conv = nn.Conv2d(in_channels, out_channels, kernel, groups=groups, bias=bias)
    transpose = nn.ConvTranspose2d(in_channels, out_channels, kernel, groups=groups, bias=bias)
    expected = conv_num_parameters(in_channels, out_channels, kernel, groups, bias)
    assert count_parameters(conv) == expected
    assert count_parameters(transpose) == expected


def test_count_parameters_skips_frozen_ones():
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 2))  # 15 + 8
    model[0].requires_grad_(False)
    assert count_parameters(model) == 8
    assert count_parameters(model, trainable_only=False) == 23


@pytest.mark.parametrize("call, message", [
    (lambda: conv_output_size(3, 5), "too small"),
    (lambda: conv_output_size(28, 0), "kernel_size must be a whole number >= 1"),
    (lambda: conv_output_size(28, 3, stride=0), "stride must be a whole number >= 1"),
    (lambda: conv_output_size(28, 3, padding=-1), "padding must be >= 0"),
    (lambda: conv_output_size(28, 3, padding="full"), "padding must be"),
    (lambda: conv_output_size(28, 2.5), "must be an int"),
    (lambda: conv_output_size((28, 28), (3, 3, 3)), "same length"),
    (lambda: pool_output_size(28, 2, padding=2), "half the kernel"),
    (lambda: conv_transpose_output_size(7, 3, stride=2, output_padding=2), "output_padding"),
    (lambda: conv_num_parameters(3, 8, 3, groups=2), "groups"),
])
def test_bad_input_gives_a_clear_error(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@pytest.mark.parametrize("in_channels, out_channels, stride, size, expected", [
    (8, 8, 1, 14, (8, 14, 14)),   # identity shortcut
    (8, 16, 1, 14, (16, 14, 14)),  # projection: more channels
    (8, 16, 2, 14, (16, 7, 7)),   # projection: more channels, half the size
    (8, 8, 2, 15, (8, 8, 8)),     # projection: same channels, stride 2 on an odd size
])
def test_residual_block_shapes(in_channels, out_channels, stride, size, expected):
    block = ResidualBlock(in_channels, out_channels, stride)
    assert isinstance(block.shortcut, nn.Identity) == (in_channels == out_channels and stride == 1)
    out = block(torch.randn(2, in_channels, size, size))
    assert tuple(out.shape) == (2, *expected)
    assert conv_output_size(size, 3, stride, 1) == expected[1]


def test_residual_block_parameter_count():
    block = ResidualBlock(8, 16, stride=2)
    convs = conv_num_parameters(8, 16, 3, bias=False) + conv_num_parameters(16, 16, 3, bias=False)
    projection = conv_num_parameters(8, 16, 1, bias=False)
    batch_norms = 3 * 2 * 16  # gamma and beta per channel
    assert count_parameters(block) == convs + projection + batch_norms


def test_identity_shortcut_passes_the_gradient_unchanged():
    # with the residual branch switched off (last batch norm's gamma = beta = 0) the block is relu(x),
    # so the gradient reaching x is the upstream gradient wherever x > 0: nothing shrinks it
    torch.manual_seed(0)
    block = ResidualBlock(4)
    nn.init.zeros_(block.bn2.weight)
    nn.init.zeros_(block.bn2.bias)
    x = torch.randn(3, 4, 6, 6, requires_grad=True)
    upstream = torch.randn(3, 4, 6, 6)
    out = block(x)
    assert torch.equal(out, torch.relu(x))
    out.backward(upstream)
    assert torch.equal(x.grad, upstream * (x > 0))


def test_deep_residual_stack_keeps_the_gradient_at_the_input():
    # 30 blocks deep the gradient at the first layer is as large as at the last one, within a small factor
    torch.manual_seed(0)
    model = nn.Sequential(*(ResidualBlock(4) for _ in range(30)))
    x = torch.randn(8, 4, 8, 8)
    model(x).pow(2).mean().backward()
    first, last = model[0].conv1.weight.grad.norm(), model[-1].conv1.weight.grad.norm()
    assert torch.isfinite(first) and first > 0
    assert first / last > 0.1
