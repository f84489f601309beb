import pytest
import torch

from course_utils.core import devices


@pytest.mark.parametrize("name", ["tpu", "gpu", "cuda:x", "", "CPU"])
def test_unknown_device_names_fail_with_the_choices(name):
    with pytest.raises(ValueError, match="choose one of auto, cpu, cuda, mps"):
        devices.get_device(name)


def test_device_must_be_a_string():
    with pytest.raises(TypeError):
        devices.get_device(0)


def test_auto_resolves_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert devices.get_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.get_device("auto") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.get_device("auto") == torch.device("cuda")


def test_asking_for_a_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        devices.get_device("cuda")


def test_threads_from_argument_and_environment(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert devices.set_threads(1) == 1
        monkeypatch.setenv(devices.THREADS_ENV, "2")
        assert devices.set_threads() == 2
        with pytest.raises(ValueError):
            devices.set_threads(0)
    finally:
        torch.set_num_threads(before)


def test_seed_everything_makes_runs_repeat():
    devices.seed_everything(123)
    first = torch.randn(5), torch.randint(0, 10, (5,))
    devices.seed_everything(123)
    second = torch.randn(5), torch.randint(0, 10, (5,))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_setup_rejects_bad_device_before_anything_else():
    with pytest.raises(ValueError):
        devices.setup("tpu", seed=0)


def test_describe_names_the_device_without_plumbing():
    """Lessons print it in their set-up cell: the device, not the thread count the runner chose."""
    assert devices.describe(torch.device("cpu")) == "cpu"
