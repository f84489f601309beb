import pytest
import torch

from course_utils import fc_model
from course_utils.core import arguments, devices, training
from course_utils.datasets import images, mnist, text
from course_utils.models import layers

ids = torch.arange(100)
CALLS = {  # every count the library takes, checked by the one validator
    "TensorBatches batch_size": lambda n: mnist.TensorBatches(ids, ids, batch_size=n),
    "CharBatches batch_size": lambda n: text.CharBatches(ids, n, 5),
    "CharBatches seq_length": lambda n: text.CharBatches(ids, 2, n),
    "WordVocab min_freq": lambda n: text.WordVocab.build([["a"]], min_freq=n),
    "pad_or_truncate length": lambda n: text.pad_or_truncate([1, 2], n),
    "conv_num_parameters in_channels": lambda n: layers.conv_num_parameters(n, 4, 3),
    "set_threads": lambda n: devices.set_threads(n),
    "train_transform size": lambda n: images.train_transform(n, (0.5,), (0.5,)),
    "num_epochs": lambda n: training.check_epochs(n),
    "fc_model.train epochs": lambda n: fc_model.train(None, [], [], None, None, epochs=n),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_count_is_a_whole_number_of_at_least_one(call):
    for value in (0, 2.5, True):  # True and 2.5 passed the old `value < 1` checks
        with pytest.raises(ValueError, match=rf"must be a whole number >= 1, got {value!r}"):
            call(value)


def test_check_count_returns_the_value():
    assert arguments.check_count("n", 3) == 3
    assert training.check_count is arguments.check_count


@pytest.mark.parametrize("value", ["0", "abc", "2.0", " 2", "-1", "²"])  # "²".isdigit(), but int() refuses it
def test_a_thread_count_from_the_environment_that_is_not_a_count_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv(arguments.THREADS_ENV, value)
    with pytest.raises(ValueError, match=rf"^\$COURSE_THREADS={value!r} is not a whole number >= 1$"):
        arguments.env_threads()
    with pytest.raises(ValueError, match="COURSE_THREADS"):  # the lessons' setup reads it the same way
        devices.set_threads()


@pytest.mark.parametrize("value, expected", [(None, None), ("", None), ("3", 3)])
def test_a_thread_count_from_the_environment(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv(arguments.THREADS_ENV, raising=False)
    else:
        monkeypatch.setenv(arguments.THREADS_ENV, value)
    assert arguments.env_threads() == expected
