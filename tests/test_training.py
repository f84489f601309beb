import math

import pytest
import torch
from torch import nn

from course_utils import checkpoints, data, training


@pytest.fixture(scope="module")
def loaders(tmp_path_factory, mirror):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("COURSE_DATA_MIRROR", str(mirror))
        yield data.make_loaders("mnist", 64, train_subset=2000, seed=0)


def make_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))


def test_fit_learns_and_keeps_the_best_checkpoint(loaders, tmp_path):
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = training.fit(model, loaders["train_loader"], loaders["val_loader"], nn.CrossEntropyLoss(),
                           optimizer, torch.device("cpu"), 3, checkpoint_path=tmp_path / "best.pt",
                           model_config={}, verbose=False)
    assert set(history) == {"train_loss", "train_accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in history.values())
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.8
    best = checkpoints.load_checkpoint(tmp_path / "best.pt")
    assert best["val_loss"] == min(history["val_loss"])
    assert best["epoch"] == history["val_loss"].index(min(history["val_loss"])) + 1


def test_evaluate_averages_per_sample_not_per_batch():
    # batches of 3 and 1 samples: a mean of batch means would weight the lone sample 3x too much
    model = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0], [-1.0]]))
    x = torch.tensor([[1.0], [1.0], [1.0], [-1.0]])
    y = torch.tensor([0, 0, 0, 0])
    loader = data.TensorBatches(x, y, batch_size=3)
    loss_fn = nn.CrossEntropyLoss()
    result = training.evaluate(model, loader, loss_fn, torch.device("cpu"))
    expected = loss_fn(model(x), y).item()
    assert math.isclose(result["loss"], expected, rel_tol=1e-6)
    assert result["accuracy"] == 0.75


def test_evaluate_uses_eval_mode_and_no_grad():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9))
    grad_enabled = []
    model.register_forward_hook(lambda module, inputs, output: grad_enabled.append(torch.is_grad_enabled()))
    loader = data.TensorBatches(torch.randn(8, 4), torch.zeros(8, dtype=torch.long), batch_size=8)
    first = training.evaluate(model, loader, nn.CrossEntropyLoss(), torch.device("cpu"))
    assert grad_enabled == [False]  # no graph is built during evaluation
    second = training.evaluate(model, loader, nn.CrossEntropyLoss(), torch.device("cpu"))
    assert first == second  # dropout is off
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("bad", [0, -1, 1.5, "3", True])
def test_bad_epoch_counts_fail_before_training(bad):
    model = make_model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="num_epochs"):
        training.fit(model, [], [], nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=1),
                     torch.device("cpu"), bad)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_plateau_scheduler_gets_the_val_loss_and_lowers_the_rate():
    # zero inputs and no bias: the gradient is zero, so the val loss never improves after epoch 1
    model = nn.Linear(4, 3, bias=False)
    loader = data.TensorBatches(torch.zeros(8, 4), torch.zeros(8, dtype=torch.long), batch_size=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0)
    training.fit(model, loader, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), 2,
                 scheduler=scheduler, verbose=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # lowered once, after epoch 2


def test_epoch_schedulers_step_once_per_epoch():
    model = nn.Linear(4, 3)
    loader = data.TensorBatches(torch.randn(8, 4), torch.zeros(8, dtype=torch.long), batch_size=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    training.fit(model, loader, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), 3,
                 scheduler=scheduler, verbose=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.125)


@pytest.mark.parametrize("bad", [0, 2.5, "3", True, None])
def test_check_count_names_the_setting(bad):
    with pytest.raises(ValueError, match="eval_every must be a whole number >= 1"):
        training.check_count("eval_every", bad)
    assert training.check_count("eval_every", 3) == 3


def test_checkpoint_needs_a_config():
    model = make_model()
    with pytest.raises(ValueError, match="model_config"):
        training.fit(model, [], [], nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=1),
                     torch.device("cpu"), 1, checkpoint_path="x.pt")


def test_empty_loader_is_an_error():
    model = make_model()
    with pytest.raises(ValueError, match="no batches"):
        training.train_one_epoch(model, [], nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=1),
                                 torch.device("cpu"))


def test_predict_probs_same_for_logits_and_log_softmax():
    torch.manual_seed(0)
    logits_model = nn.Linear(3, 4)
    log_probs_model = nn.Sequential(logits_model, nn.LogSoftmax(dim=1))
    x = torch.randn(5, 3)
    p1 = training.predict_probs(logits_model, x, torch.device("cpu"))
    p2 = training.predict_probs(log_probs_model, x, torch.device("cpu"))
    assert torch.allclose(p1, p2, atol=1e-6)
    assert torch.allclose(p1.sum(dim=1), torch.ones(5))
