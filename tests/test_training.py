import math

import pytest
import torch
from torch import nn

from course_utils.core import checkpoints, training
from course_utils.datasets import mnist


@pytest.fixture(scope="module")
def loaders(tmp_path_factory, mirror):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("COURSE_DATA_MIRROR", str(mirror))
        yield mnist.make_loaders("mnist", 64, train_subset=2000, seed=0)


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
    loader = mnist.TensorBatches(x, y, batch_size=3)
    loss_fn = nn.CrossEntropyLoss()
    result = training.evaluate(model, loader, loss_fn, torch.device("cpu"))
    expected = loss_fn(model(x), y).item()
    assert math.isclose(result["loss"], expected, rel_tol=1e-6)
    assert result["accuracy"] == 0.75


def test_evaluate_uses_eval_mode_and_no_grad():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.9))
    grad_enabled = []
    model.register_forward_hook(lambda module, inputs, output: grad_enabled.append(torch.is_grad_enabled()))
    loader = mnist.TensorBatches(torch.randn(8, 4), torch.zeros(8, dtype=torch.long), batch_size=8)
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
    loader = mnist.TensorBatches(torch.zeros(8, 4), torch.zeros(8, dtype=torch.long), batch_size=4)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=0)
    training.fit(model, loader, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), 2,
                 scheduler=scheduler, verbose=False)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)  # lowered once, after epoch 2


def test_epoch_schedulers_step_once_per_epoch():
    model = nn.Linear(4, 3)
    loader = mnist.TensorBatches(torch.randn(8, 4), torch.zeros(8, dtype=torch.long), batch_size=4)
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


def _toy_loader(n=10, batch_size=4, seed=0):
    torch.manual_seed(seed)
    return mnist.TensorBatches(torch.randn(n, 4), torch.randint(0, 3, (n,)), batch_size=batch_size)


@pytest.mark.parametrize("start_in_training", [True, False])
def test_evaluate_and_predict_probs_restore_the_mode(start_in_training):
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 3))
    model.train(start_in_training)
    model[1].eval()  # a submodule with its own mode (as a frozen part would be) keeps it
    modes = [m.training for m in model.modules()]
    training.evaluate(model, _toy_loader(), nn.CrossEntropyLoss(), torch.device("cpu"))
    assert [m.training for m in model.modules()] == modes
    training.predict_probs(model, torch.randn(2, 4), torch.device("cpu"))
    assert [m.training for m in model.modules()] == modes


def test_reported_loss_is_per_sample_whatever_the_reduction():
    # 10 samples in batches of 4, 4, 2: a sum loss must not be multiplied by the batch size again
    results = {}
    for reduction in ("mean", "sum"):
        torch.manual_seed(0)
        model = nn.Linear(4, 3)
        loss_fn = nn.CrossEntropyLoss(reduction=reduction)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: both runs see the same weights
        train = training.train_one_epoch(model, _toy_loader(), loss_fn, optimizer, torch.device("cpu"))
        val = training.evaluate(model, _toy_loader(), loss_fn, torch.device("cpu"))
        results[reduction] = (train["loss"], val["loss"])
    x, y = _toy_loader().images, _toy_loader().labels
    expected = nn.functional.cross_entropy(model(x), y).item()
    for train_loss, val_loss in results.values():
        assert train_loss == pytest.approx(expected, rel=1e-6)
        assert val_loss == pytest.approx(expected, rel=1e-6)


def test_a_loss_without_batch_reduction_is_refused():
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="reduction='none'.*use reduction='mean'"):
        training.evaluate(model, _toy_loader(), nn.CrossEntropyLoss(reduction="none"), torch.device("cpu"))


def test_a_plain_function_returning_per_sample_losses_is_refused():
    def per_sample(outputs, targets):
        return nn.functional.cross_entropy(outputs, targets, reduction="none")

    with pytest.raises(ValueError, match=r"shape \(4,\); training needs one number per batch"):
        training.evaluate(nn.Linear(4, 3), _toy_loader(), per_sample, torch.device("cpu"))


@pytest.mark.parametrize("progress", [False, True])
def test_an_epoch_draws_the_loaders_shuffle_once(progress):
    dataset = torch.utils.data.TensorDataset(torch.arange(12.0).reshape(12, 1), torch.zeros(12, dtype=torch.long))

    def loader():
        return torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True,
                                           generator=torch.Generator().manual_seed(2))

    expected = [x.flatten().tolist() for x, _ in loader()]
    seen = []
    model = nn.Linear(1, 3)
    model.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0].flatten().tolist()))
    training.train_one_epoch(model, loader(), nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                             torch.device("cpu"), progress=progress)
    assert seen == expected  # the batches a plain `for` loop over the same loader gets


def test_the_loop_reads_the_device_once_per_epoch_not_per_batch(monkeypatch):
    reads = []
    item = torch.Tensor.item
    monkeypatch.setattr(torch.Tensor, "item", lambda self: reads.append(1) or item(self))
    model = nn.Linear(4, 3)
    loader = _toy_loader(n=40, batch_size=4)  # 10 batches
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    training.train_one_epoch(model, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"))
    training.evaluate(model, loader, nn.CrossEntropyLoss(), torch.device("cpu"))
    assert len(reads) == 4  # loss and accuracy, once per pass (the old loop read 20 times per pass)


def test_fit_continues_a_history_and_numbers_epochs_after_it(capsys):
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    loader = _toy_loader()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    history = training.new_history()
    # one epoch written by hand, as lesson 03 does, then fit continues it
    train = training.train_one_epoch(model, loader, loss_fn, optimizer, torch.device("cpu"))
    val = training.evaluate(model, loader, loss_fn, torch.device("cpu"))
    for split, metrics in (("train", train), ("val", val)):
        for key, value in metrics.items():
            history[f"{split}_{key}"].append(value)
    returned = training.fit(model, loader, loader, loss_fn, optimizer, torch.device("cpu"), 2, history=history)
    assert returned is history and all(len(values) == 3 for values in history.values())
    assert history["train_loss"][0] == train["loss"]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["2/3", "3/3"]


def test_fit_marks_only_improvements_on_the_history_it_continues(capsys):
    model = nn.Linear(4, 3)
    history = {"train_loss": [1.0], "train_accuracy": [0.5], "val_loss": [0.0], "val_accuracy": [1.0]}
    training.fit(model, _toy_loader(), _toy_loader(), nn.CrossEntropyLoss(),
                 torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), 1, history=history)
    assert not capsys.readouterr().out.rstrip().endswith("*")  # a loss of 0.0 cannot be beaten


def test_fit_rejects_a_malformed_history():
    model = nn.Linear(4, 3)
    with pytest.raises(ValueError, match="history must have the keys"):
        training.fit(model, _toy_loader(), _toy_loader(), nn.CrossEntropyLoss(),
                     torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), 1,
                     history={"train_loss": [1.0]})


def test_progress_bars_by_default_in_a_jupyter_kernel_unless_the_runner_turns_them_off(monkeypatch):
    import sys

    monkeypatch.delenv(training.PROGRESS_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert training.show_progress(None) is False  # a script or a terminal: no bar unless asked
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    assert training.show_progress(None) is True  # a notebook: a bar (a widget in JupyterLab)
    monkeypatch.setenv(training.PROGRESS_ENV, "0")
    assert training.show_progress(None) is False  # the runner's kernels: committed outputs stay clean
    assert training.show_progress(True) is True and training.show_progress(False) is False  # asked for
