"""The Lightning module computes what the course loop computes; its checkpoints reload safely."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

L = pytest.importorskip("lightning")

from course_utils.core import training  # noqa: E402
from course_utils.datasets import mnist  # noqa: E402
from course_utils.fc_model import Network  # noqa: E402
from course_utils.models.lightning import FashionMNISTDataModule, LitClassifier, quiet_lightning  # noqa: E402

CONFIG = {"input_size": 12, "output_size": 3, "hidden_layers": [8], "drop_p": 0.0}


def tiny_loaders(n: int = 10, batch_size: int = 4):
    generator = torch.Generator().manual_seed(1)
    data = TensorDataset(torch.randn(n, 12, generator=generator), torch.randint(0, 3, (n,), generator=generator))
    train = DataLoader(data, batch_size, shuffle=True, generator=torch.Generator().manual_seed(2))
    return train, DataLoader(data, batch_size)  # n=10, batch 4: the last batch holds 2


def make_trainer(tmp_path, max_epochs: int, **kwargs):
    quiet_lightning()
    kwargs = {"num_sanity_val_steps": 0} | kwargs
    return L.Trainer(accelerator="cpu", devices=1, max_epochs=max_epochs, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs)


def test_lightning_and_the_course_loop_reach_the_same_weights(tmp_path):
    torch.manual_seed(0)
    lit = LitClassifier(CONFIG, lr=0.01, lr_gamma=0.5)
    torch.manual_seed(0)
    plain = Network(**CONFIG)
    assert all(torch.equal(a, b) for a, b in zip(lit.model.parameters(), plain.parameters()))

    train, val = tiny_loaders()
    make_trainer(tmp_path, max_epochs=2).fit(lit, train, val)
    optimizer = torch.optim.Adam(plain.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)
    train, val = tiny_loaders()
    training.fit(plain, train, val, nn.NLLLoss(), optimizer, torch.device("cpu"), 2, scheduler=scheduler, verbose=False)
    diff = max((a - b).abs().max().item() for a, b in zip(lit.model.parameters(), plain.parameters()))
    assert diff <= 1e-6
    untouched = Network(**CONFIG)  # the updates were real: far from a fresh network
    assert max((a - b).abs().max().item() for a, b in zip(untouched.parameters(), plain.parameters())) > 1e-3


def test_logged_epoch_loss_is_the_per_sample_mean(tmp_path):
    torch.manual_seed(0)
    lit = LitClassifier(CONFIG)
    _, val = tiny_loaders()
    logged = make_trainer(tmp_path, max_epochs=1).validate(lit, val, verbose=False)[0]
    expected = training.evaluate(lit.model, val, nn.NLLLoss(), torch.device("cpu"))
    assert logged["val_loss"] == pytest.approx(expected["loss"], abs=1e-6)
    assert logged["val_accuracy"] == pytest.approx(expected["accuracy"], abs=1e-6)


def test_checkpoint_reloads_with_weights_only(tmp_path):
    torch.manual_seed(0)
    lit = LitClassifier(CONFIG, lr=0.01)
    train, val = tiny_loaders()
    trainer = make_trainer(tmp_path, max_epochs=1)
    trainer.fit(lit, train, val)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    contents = torch.load(path, weights_only=True)  # raises if anything but tensors and plain containers
    assert contents["hyper_parameters"]["model_config"] == CONFIG
    reloaded = LitClassifier.load_from_checkpoint(path, weights_only=True)
    inputs = torch.randn(5, 12)
    lit.eval()
    assert torch.equal(reloaded(inputs), lit(inputs))


def test_data_module_needs_setup_first():
    with pytest.raises(RuntimeError, match="call setup"):
        FashionMNISTDataModule().train_dataloader()


def test_data_module_has_the_lessons_split(mirror):
    module = FashionMNISTDataModule(batch_size=100, train_subset=500, seed=4)
    module.prepare_data()
    module.setup("fit")
    loaders = mnist.make_loaders("fashion_mnist", 100, train_subset=500, seed=4)
    assert torch.equal(module.datasets["val"].tensors[1], loaders["val_loader"].labels)
    assert torch.equal(module.datasets["train"].tensors[0], loaders["train_loader"].images)
    assert len(module.datasets["test"]) == 10_000


def test_exercise_plateau_stop_stops_a_real_trainer_where_early_stopping_does(tmp_path):
    """Exercise 15.2's reference, in a real Trainer with its sanity check: the epoch EarlyStopping stops after."""
    from course_utils.exercises import get
    from course_utils.exercises.framework import exec_answer

    exercise = get("15.2")
    PlateauStop = exec_answer(exercise.solution, exercise.name, "15.2 reference")
    # validation labels unrelated to training: the untrained model's loss, which the sanity check sees (all of
    # the validation set), is the lowest, so a callback that counts the sanity check stops an epoch early
    generator = torch.Generator().manual_seed(3)
    val = DataLoader(TensorDataset(torch.randn(12, 12, generator=generator),
                                   torch.randint(0, 3, (12,), generator=generator)), 4)
    stopped = {}
    for name, callback in (("EarlyStopping", L.pytorch.callbacks.EarlyStopping("val_loss", patience=2)),
                           ("PlateauStop", PlateauStop("val_loss", 2))):
        torch.manual_seed(0)
        trainer = make_trainer(tmp_path, max_epochs=30, callbacks=[callback], num_sanity_val_steps=-1)
        trainer.fit(LitClassifier(CONFIG, lr=0.2), tiny_loaders()[0], val)
        stopped[name] = trainer.current_epoch
    assert stopped["PlateauStop"] == stopped["EarlyStopping"] < 30, stopped


@pytest.mark.parametrize("args, words", [
    (["--num-epochs", "0"], "--num-epochs must be a whole number >= 1, got 0"),
    (["--batch-size", "abc"], "argument --batch-size: invalid int value: 'abc'"),
    (["--lr", "-1"], "--lr must be a number above 0"),
    (["--device", "cuda:7"], "--device cuda:7"),
])
def test_lightning_ddp_refuses_a_bad_argument_in_one_line_before_training(capsys, tmp_path, args, words):
    from course_utils.tools import lightning_ddp
    if args[:2] == ["--device", "cuda:7"] and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    assert lightning_ddp.main([*args, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and words in err and err.startswith("lightning_ddp: error: ")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_lightning_ddp_refuses_an_out_it_cannot_write(capsys, tmp_path):
    from course_utils.tools import lightning_ddp
    (tmp_path / "file").write_text("")
    assert lightning_ddp.main(["--out", str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--out" in err and "is not a folder" in err
