"""benchmarks/data_path.py: what its compute bound counts, and that bad options fail before any timing.

Its speed is measured by running it (benchmarks/README.md), never here.
"""

import importlib.util

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from course_utils.datasets.sources import PROJECT_ROOT

SPEC = importlib.util.spec_from_file_location("data_path", PROJECT_ROOT / "benchmarks" / "data_path.py")
data_path = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(data_path)


def step_matmuls(batch_size: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The (m, k) and (k, n) operand shapes of every mm/addmm one real training step runs, by the profiler."""
    model, optimizer = data_path.build(0, torch.device("cpu"), fused=True)
    images, labels = torch.randn(batch_size, 1, 28, 28), torch.randint(0, 10, (batch_size,))
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        loss = nn.NLLLoss()(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    shapes = []
    for event in prof.events():
        if event.name in ("aten::mm", "aten::addmm"):
            a, b = event.input_shapes[:2] if event.name == "aten::mm" else event.input_shapes[1:3]
            shapes.append((tuple(a), tuple(b)))
    return shapes


@pytest.mark.parametrize("batch_size", [64, 5])
def test_the_bound_counts_exactly_the_matmuls_a_training_step_runs(batch_size):
    expected = sorted(data_path.layer_matmuls(batch_size))
    assert sorted(step_matmuls(batch_size)) == expected
    # the first layer's input gradient is not among them: the images do not require a gradient
    assert ((batch_size, 256), (256, 784)) not in expected


@pytest.mark.parametrize("option", ["--repeats", "--batch-size", "--threads"])
def test_a_count_below_one_stops_before_anything_is_timed(option, capsys):
    with pytest.raises(SystemExit, match="must be at least 1"):
        data_path.main([option, "0"])
    assert capsys.readouterr().out == ""  # nothing printed: no data fetched, no path run
