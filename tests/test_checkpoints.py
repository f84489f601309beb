import pytest
import torch
from torch import nn

from course_utils.core import checkpoints, training
from course_utils.core.checkpoints import CheckpointError
from course_utils.datasets import mnist


def build(sizes=(4, 8, 3)):
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def make_model(sizes):
    return build(tuple(sizes))


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = make_model([4, 8, 3])
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    path = checkpoints.save_checkpoint(tmp_path / "ckpt.pt", model, {"sizes": [4, 8, 3]},
                                       optimizer=optimizer, epoch=3, class_names=["a", "b", "c"])
    return path, model


def test_round_trip_rebuilds_an_identical_model(saved):
    path, model = saved
    rebuilt, checkpoint = checkpoints.restore(path, make_model)
    x = torch.randn(5, 4)
    assert torch.equal(rebuilt(x), model(x))
    assert checkpoint["epoch"] == 3 and checkpoint["class_names"] == ["a", "b", "c"]
    assert checkpoint["optimizer_state"]["state"]  # Adam moments were saved


def test_optimizer_state_resumes_on_the_rebuilt_model(saved):
    path, _ = saved
    model, checkpoint = checkpoints.restore(path, make_model)
    optimizer = torch.optim.Adam(model.parameters())
    optimizer.load_state_dict(checkpoint["optimizer_state"])
    assert optimizer.state_dict()["state"][0]["step"] == 1


def test_saved_file_has_ordinary_permissions(saved):
    path, _ = saved
    umask = __import__("os").umask(0)
    __import__("os").umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_mapping_to_a_missing_gpu_is_a_clear_error(saved, monkeypatch):
    path, _ = saved
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA GPU"):
        checkpoints.load_checkpoint(path, map_location="cuda")


@pytest.mark.parametrize("keep", ["half", 100, 0])
def test_truncated_file_says_so(saved, tmp_path, keep):
    path, _ = saved
    truncated = tmp_path / "truncated.pt"
    content = path.read_bytes()
    truncated.write_bytes(content[: len(content) // 2 if keep == "half" else keep])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        checkpoints.load_checkpoint(truncated)


def test_random_bytes_say_so(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(b"this is not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        checkpoints.load_checkpoint(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoints.load_checkpoint(tmp_path / "absent.pt")


def test_plain_state_dict_is_not_a_course_checkpoint(tmp_path):
    path = tmp_path / "state.pt"
    torch.save(build().state_dict(), path)
    with pytest.raises(CheckpointError, match="not a course checkpoint"):
        checkpoints.load_checkpoint(path)


def test_other_architecture_names_keys_and_shapes(saved):
    path, _ = saved
    checkpoint = checkpoints.load_checkpoint(path)
    other = make_model([4, 16, 3, 2])
    with pytest.raises(CheckpointError) as err:
        checkpoints.load_state_checked(other, checkpoint["model_state"], source="ckpt.pt")
    message = str(err.value)
    assert "different architecture" in message
    assert "shape differs: 0.weight is (8, 4) in the checkpoint, (16, 4) in the model" in message
    assert "missing from checkpoint: 4.weight (2, 3)" in message


def test_untrusted_pickles_are_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model_config": {}, "model_state": {}, "payload": nn.Linear(2, 2)}, path)
    with pytest.raises(CheckpointError, match="refuses them"):
        checkpoints.load_checkpoint(path)  # weights_only=True: no arbitrary objects


def test_failed_save_leaves_the_old_file_intact(saved, monkeypatch):
    path, model = saved
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save_checkpoint(path, model, {"sizes": [4, 8, 3]})
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left behind


def test_map_location_moves_tensors(saved):
    path, _ = saved
    checkpoint = checkpoints.load_checkpoint(path, map_location=torch.device("meta"))
    assert checkpoint["model_state"]["0.weight"].device.type == "meta"


def test_checkpoint_of_a_different_model_says_so(saved):
    path, _ = saved

    def build_other(hidden_size=4):  # a model whose keywords are not the checkpoint's ("sizes")
        return nn.Linear(hidden_size, 2)

    with pytest.raises(CheckpointError) as err:
        checkpoints.restore(path, build_other)
    message = str(err.value)
    assert "saved for a different model" in message
    assert str(path) in message and "build_other" in message and "keys sizes" in message


def test_weights_of_other_shapes_are_explained_by_restore(saved):
    path, _ = saved
    with pytest.raises(CheckpointError, match="different architecture") as err:
        checkpoints.restore(path, lambda sizes: make_model([4, 16, 3]))
    assert "shape differs: 0.weight is (8, 4) in the checkpoint, (16, 4) in the model" in str(err.value)


@pytest.mark.parametrize("fields, match", [
    ({"model_config": {}, "model_state": [1, 2]}, "model_state should be a state dict"),
    ({"model_config": {}, "model_state": {"0.weight": 1.5}}, "0.weight is not"),
    ({"model_config": [4, 8, 3], "model_state": {}}, "model_config should be a dict"),
])
def test_malformed_checkpoint_fields_are_explained(tmp_path, fields, match):
    path = tmp_path / "odd.pt"
    torch.save(fields, path)
    with pytest.raises(CheckpointError, match=match):
        checkpoints.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="is damaged"):
        checkpoints.restore(path, make_model)


@pytest.mark.parametrize("map_location", ["cpu", torch.device("cpu"), {"cuda:0": "cpu"}, {"cpu": "meta"}])
def test_restore_accepts_every_form_of_map_location(saved, map_location):
    path, _ = saved
    model, checkpoint = checkpoints.restore(path, make_model, map_location=map_location)
    expected = "meta" if map_location == {"cpu": "meta"} else "cpu"
    assert {p.device.type for p in model.parameters()} == {expected}
    assert checkpoint["model_state"]["0.weight"].device.type == expected


def _resumable_run(seed=0):
    """A model with dropout, Adam, a step scheduler and a shuffling loader: every RNG a resume must put back."""
    data_rng = torch.Generator().manual_seed(0)  # the same data whatever the seed
    images, labels = torch.randn(48, 6, generator=data_rng), torch.randint(0, 3, (48,), generator=data_rng)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loader = mnist.TensorBatches(images, labels, batch_size=8, shuffle=True, seed=seed)
    return model, optimizer, scheduler, loader


def _fit(model, optimizer, scheduler, loader, num_epochs, **kwargs):
    return training.fit(model, loader, loader, nn.CrossEntropyLoss(), optimizer, torch.device("cpu"), num_epochs,
                        scheduler=scheduler, verbose=False, **kwargs)


def test_resume_continues_exactly_where_training_stopped(tmp_path):
    model, optimizer, scheduler, loader = _resumable_run()
    _fit(model, optimizer, scheduler, loader, 2)
    uninterrupted = model.state_dict()

    model, optimizer, scheduler, loader = _resumable_run()
    history = _fit(model, optimizer, scheduler, loader, 1)
    path = checkpoints.save_checkpoint(tmp_path / "epoch1.pt", model, {}, optimizer=optimizer, epoch=1,
                                       scheduler=scheduler, generators=[loader.generator], history=history)
    torch.manual_seed(123)  # whatever runs between saving and resuming draws random numbers
    torch.randn(100)
    model, checkpoint = checkpoints.restore(path, lambda: _resumable_run(seed=7)[0])
    _, _, _, loader = _resumable_run(seed=7)  # fresh objects, deliberately built with another seed
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    assert checkpoints.resume(checkpoint, optimizer, scheduler, generators=[loader.generator]) == 2
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.005)  # the scheduler's step came back
    resumed_history = _fit(model, optimizer, scheduler, loader, 1, history=checkpoint["history"])
    assert len(resumed_history["train_loss"]) == 2
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor, uninterrupted[name], rtol=0, atol=1e-6)


def test_fit_checkpoints_can_resume(tmp_path):
    model, optimizer, scheduler, loader = _resumable_run()
    _fit(model, optimizer, scheduler, loader, 1, checkpoint_path=tmp_path / "best.pt", model_config={})
    checkpoint = checkpoints.load_checkpoint(tmp_path / "best.pt")
    assert checkpoint["scheduler_state"]["last_epoch"] == 1
    assert len(checkpoint["rng_state"]["generators"]) == 1  # the loader's shuffling
    assert len(checkpoint["history"]["val_loss"]) == 1


def test_resume_says_what_the_checkpoint_lacks(saved):
    path, model = saved
    checkpoint = checkpoints.load_checkpoint(path)
    scheduler = torch.optim.lr_scheduler.StepLR(torch.optim.SGD(model.parameters(), lr=1), step_size=1)
    with pytest.raises(CheckpointError, match="no scheduler state"):
        checkpoints.resume(checkpoint, scheduler=scheduler)
    with pytest.raises(CheckpointError, match="saved 0 generator state.*but 1 generator"):
        checkpoints.resume(checkpoint, generators=[torch.Generator()])


def test_resume_explains_a_checkpoint_without_rng_state(tmp_path):
    model = make_model([4, 8, 3])
    path = tmp_path / "older.pt"
    torch.save({"model_config": {"sizes": [4, 8, 3]}, "model_state": model.state_dict(), "epoch": 2}, path)
    _, checkpoint = checkpoints.restore(path, make_model)
    with pytest.raises(CheckpointError, match="no RNG state"):
        checkpoints.resume(checkpoint)


def test_fit_checkpoints_with_a_data_loader(tmp_path):
    dataset = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randint(0, 3, (16,)))
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, shuffle=True)  # no generator: the global RNG shuffles
    model = nn.Linear(4, 3)
    training.fit(model, loader, loader, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                 torch.device("cpu"), 1, checkpoint_path=tmp_path / "best.pt", model_config={}, verbose=False)
    checkpoint = checkpoints.load_checkpoint(tmp_path / "best.pt")
    assert checkpoint["rng_state"]["generators"] == [] and checkpoints.resume(checkpoint) == 2


def test_a_config_claiming_a_huge_model_is_refused_before_allocating(saved, tmp_path):
    """sizes [4, 10**6, 10**6, 3] would be 4 TB of weights: the allocator must never be asked for them."""
    path, _ = saved
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["model_config"] = {"sizes": [4, 10**6, 10**6, 3]}
    edited = tmp_path / "edited.pt"
    torch.save(checkpoint, edited)
    with pytest.raises(CheckpointError) as err:
        checkpoints.restore(edited, make_model)
    message = str(err.value)
    assert "\n" not in message and str(edited) in message and "different architecture" in message
    assert "shape differs: 0.weight is (8, 4) in the checkpoint, (1000000, 4) in the model" in message
    assert "4.0 TB of weights, not allocated" in message and "model_config keys sizes" in message


def test_a_builder_that_cannot_build_on_the_meta_device_is_still_restored(saved):
    path, model = saved

    def build_with_real_tensors(sizes):
        torch.zeros(1).item()  # needs a real value: fails on the meta device, fine on the CPU
        return make_model(sizes)

    rebuilt, _ = checkpoints.restore(path, build_with_real_tensors)
    x = torch.randn(3, 4)
    assert torch.equal(rebuilt(x), model(x))
