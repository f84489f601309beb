import pytest
import torch
from torch import nn

from course_utils import checkpoints
from course_utils.core.checkpoints import CheckpointError


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


def test_truncated_file_says_so(saved, tmp_path):
    path, _ = saved
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
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
