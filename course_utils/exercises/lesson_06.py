"""Exercises for lesson 06 (saving and loading): a snapshot, a checkpoint that rebuilds its model, an atomic save."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from course_utils.exercises.framework import (
    Exercise,
    Mistake,
    call,
    describe,
    distinct_sizes,
    generator,
    spy,
    template_of,
    variant,
)

LESSON = "06_saving_loading"


def small_model(gen: torch.Generator) -> nn.Module:
    """A network with parameters and buffers (batch norm's running averages), its weights from gen."""
    n_in, n_hidden, n_out = distinct_sizes(gen, 3, 2, 9)
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen))
        model[1].running_var.abs_()
    return model


# ---------------------------------------------------------------- 06.1 a snapshot of the weights

HINT_1 = ("section 2 (What is in a model: the state_dict): the state_dict's tensors are the model's own, "
          "not copies; copy.deepcopy(model.state_dict()) takes a snapshot of parameters and buffers")


def check_snapshot(snapshot) -> str:
    gen = generator("06.1")
    model = small_model(gen)
    state = model.state_dict()
    saved = call(snapshot, model, hint=HINT_1)
    if not isinstance(saved, dict):
        raise Mistake(f"snapshot returned {describe(saved)}, expected a dict of name -> tensor", HINT_1)
    missing, extra = [k for k in state if k not in saved], [k for k in saved if k not in state]
    if missing or extra:
        raise Mistake(f"your snapshot lacks {missing}" + (f" and has unexpected {extra}" if extra else "")
                      + ": it must hold every entry of model.state_dict(), buffers such as batch norm's running "
                      "averages included", HINT_1)
    for name, tensor in state.items():
        copy = saved[name]
        if not isinstance(copy, torch.Tensor) or copy.shape != tensor.shape or not torch.equal(copy, tensor):
            raise Mistake(f"snapshot[{name!r}] is {describe(copy)}, not a copy of the model's {name}", HINT_1)
        if copy.untyped_storage().data_ptr() == tensor.untyped_storage().data_ptr():
            raise Mistake(f"snapshot[{name!r}] shares memory with the model, so it changes when training "
                          "continues: copy the tensors", HINT_1)
    before = {k: v.clone() for k, v in saved.items()}
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.add_(1)  # keep "training"
    changed = [k for k, v in saved.items() if not torch.equal(v, before[k])]
    if changed:
        raise Mistake(f"changing the model afterwards changed your snapshot ({changed[0]}): copy the tensors", HINT_1)
    return f"all {len(state)} entries (parameters and buffers) copied, independent of later changes"


EX_1 = Exercise(
    id="06.1", lesson=LESSON, title="A snapshot of the weights", name="snapshot",
    statement="""
Write `snapshot(model)` that returns a dictionary holding a **copy** of every entry of
`model.state_dict()`, buffers included (this model has batch norm, whose running averages are buffers,
not parameters), under the same names. Training the model afterwards must not change the snapshot: no
tensor of the snapshot may share memory with the model.

Correct means: the same names and values as `model.state_dict()`, no shared memory, and unchanged after the
model's tensors change in place. See section 2, *What is in a model: the state_dict*.
""",
    template='''
def snapshot(model):
    """A copy of model.state_dict() (parameters and buffers) that later training cannot change."""
    raise NotImplementedError  # your code here
''',
    solution='''
import copy


def snapshot(model):
    """A copy of model.state_dict() (parameters and buffers) that later training cannot change."""
    return copy.deepcopy(model.state_dict())  # the state_dict's tensors are the model's own
''',
    alternatives=['''
def snapshot(model):
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
'''],
    wrong_answers=[
        ("def snapshot(model):\n    return model.state_dict()\n", "shares memory with the model"),
        ("def snapshot(model):\n    return {k: v.detach().clone() for k, v in model.named_parameters()}\n",
         "buffers such as batch norm's running averages"),
        ("def snapshot(model):\n    return dict(model.state_dict())\n", "shares memory with the model"),
    ],
    checker=check_snapshot, hint=HINT_1,
)


# ---------------------------------------------------------------- 06.2 a checkpoint that rebuilds its model

HINT_2 = ("sections 3 and 4 (The plain recipe; The course's checkpoints) and section 6 (Loading safely): "
          "model_class(**model_config), load_state_dict(model_state), "
          "torch.load(path, map_location=..., weights_only=True), then eval()")


class TinyNet(nn.Module):
    """The model class the check saves and hands to load_model."""

    def __init__(self, input_size, hidden_size, output_size, drop_p):
        super().__init__()
        self.hidden = nn.Linear(input_size, hidden_size)
        self.dropout = nn.Dropout(drop_p)
        self.output = nn.Linear(hidden_size, output_size)

    def forward(self, x):
        return self.output(self.dropout(torch.relu(self.hidden(x))))


def check_load_model(load_model) -> str:
    gen = generator("06.2")
    n_in, n_hidden, n_out = distinct_sizes(gen, 3, 2, 9)
    config = {"input_size": n_in, "hidden_size": n_hidden, "output_size": n_out, "drop_p": 0.5}
    original = TinyNet(**config)
    with torch.no_grad():
        for p in original.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny.pt"
        torch.save({"model_config": config, "model_state": original.state_dict(), "optimizer_state": None,
                    "epoch": 3}, path)
        with spy(torch, "load") as loads:
            model = call(load_model, path, TinyNet, "cpu", hint=HINT_2)
    if not loads:
        raise Mistake("load_model never called torch.load", HINT_2)
    args, kwargs = loads[0]
    if kwargs.get("weights_only") is not True:
        raise Mistake("call torch.load with weights_only=True written out: the safe loader, which cannot run "
                      "code hidden in a file (older PyTorch versions defaulted to False)", HINT_2)
    if "map_location" not in kwargs and len(args) < 2:
        raise Mistake("pass map_location on to torch.load, so that a checkpoint saved on a GPU loads here", HINT_2)
    if not isinstance(model, TinyNet):
        raise Mistake(f"load_model returned {describe(model)}, expected a model built by model_class", HINT_2)
    if model.training:
        raise Mistake("load_model left the model in training mode (dropout on): return it in evaluation mode, "
                      "ready to predict", HINT_2)
    x = torch.randn(4, n_in, generator=gen)
    original.eval()
    with torch.no_grad():
        if not torch.equal(model(x), original(x)):
            raise Mistake("the rebuilt model predicts differently from the saved one: load its weights with "
                          "model.load_state_dict(checkpoint['model_state'])", HINT_2)
    return f"rebuilt TinyNet({n_in}, {n_hidden}, {n_out}) from its config, identical predictions, eval mode, " \
           "loaded with weights_only=True"


SOLUTION_06_2 = '''
def load_model(path, model_class, map_location):
    """Rebuild model_class(**model_config) from the checkpoint at path, with its weights, in eval mode."""
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)  # plain data only, no code
    model = model_class(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    return model.eval()
'''

EX_2 = Exercise(
    id="06.2", lesson=LESSON, title="Load a checkpoint that rebuilds its model", name="load_model",
    statement="""
A checkpoint file holds a dict with `"model_config"` (the keyword arguments of the model's constructor),
`"model_state"` (its `state_dict`), `"optimizer_state"` and `"epoch"`. Write
`load_model(path, model_class, map_location)` that loads it with `torch.load`, passing `map_location` on and
writing `weights_only=True` out, rebuilds the model as `model_class(**model_config)`, loads the weights,
and returns the model in **evaluation mode**, ready to predict.

Correct means: a new `model_class` instance whose predictions equal the saved model's exactly, in eval mode,
loaded with `weights_only=True` and the given `map_location`. See sections 3 and 4, *The plain recipe* and
*The course's checkpoints*, and section 6, *Loading safely*.
""",
    template=template_of(SOLUTION_06_2),
    solution=SOLUTION_06_2,
    alternatives=['''
def load_model(path, model_class, map_location):
    saved = torch.load(path, map_location, weights_only=True)
    config, weights = saved["model_config"], saved["model_state"]
    model = model_class(**config).to(map_location)
    model.load_state_dict(weights, strict=True)
    model.eval()
    return model
'''],
    wrong_answers=[
        (variant(SOLUTION_06_2, ('model.eval()', 'model')), "left the model in training mode"),
        (variant(SOLUTION_06_2, ('map_location, weights_only=True', 'map_location')), "weights_only=True"),
        (variant(SOLUTION_06_2,
                 ('    model.load_state_dict(checkpoint["model_state"])\n', '')),
         "predicts differently"),
        (variant(SOLUTION_06_2, ('**checkpoint["model_config"]', '')),
         "your code raised TypeError"),
    ],
    checker=check_load_model, hint=HINT_2,
)


# ---------------------------------------------------------------- 06.3 an atomic save

HINT_3 = ("section 5 (Why the write is atomic): torch.save to a temporary file in the same folder, then "
          "os.replace it over the target; if the write fails, delete the temporary file and re-raise")


def saved_to(args: tuple, kwargs: dict) -> Path | None:
    """The file a torch.save call wrote to (a path, or an open file's name)."""
    target = args[1] if len(args) > 1 else kwargs.get("f")
    if not isinstance(target, (str, os.PathLike)):
        target = getattr(target, "name", None)  # an open file
    return Path(target) if isinstance(target, (str, os.PathLike)) else None


def check_atomic_save(atomic_save) -> str:
    gen = generator("06.3")
    good = {"weights": torch.randn(3, 4, generator=gen)}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        path = folder / "checkpoint.pt"
        with spy(torch, "save") as saves:
            call(atomic_save, good, path, hint=HINT_3)
        if not path.is_file():
            raise Mistake("after atomic_save(obj, path) there is no file at path", HINT_3)
        loaded = torch.load(path, weights_only=True)
        if not torch.equal(loaded["weights"], good["weights"]):
            raise Mistake("the file at path does not hold the saved object", HINT_3)
        targets = [saved_to(a, k) for a, k in saves]
        if any(t is not None and t.resolve() == path.resolve() for t in targets):
            raise Mistake("your code calls torch.save on path itself, so a failed write destroys the old file: "
                          "save to a temporary file and rename it over path", HINT_3)
        if any(t is not None and t.resolve().parent != folder.resolve() for t in targets):
            raise Mistake("the temporary file is not in path's folder: os.replace is only atomic within one file "
                          "system, so create it beside path (e.g. tempfile.mkstemp(dir=path.parent))", HINT_3)
        if sorted(p.name for p in folder.iterdir()) != ["checkpoint.pt"]:
            raise Mistake(f"files left beside the checkpoint: {sorted(p.name for p in folder.iterdir())}", HINT_3)

        unsaveable = {"weights": torch.zeros(2), "callback": lambda epoch: None}  # a lambda cannot be pickled
        try:
            atomic_save(unsaveable, path)
        except Exception:  # noqa: BLE001 - any error is right here: the object cannot be saved
            pass
        else:
            raise Mistake("atomic_save returned normally for an object that cannot be saved (it holds a lambda): "
                          "let the error reach the caller", HINT_3)
        try:
            still = torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001
            raise Mistake("after a failed save the old checkpoint no longer loads: never write to path itself; "
                          "write a temporary file and rename it only once the write succeeded", HINT_3) from None
        if not torch.equal(still["weights"], good["weights"]):
            raise Mistake("after a failed save, path holds something other than the old checkpoint", HINT_3)
        left = sorted(p.name for p in folder.iterdir() if p.name != "checkpoint.pt")
        if left:
            raise Mistake(f"a failed save left {left} behind: delete the temporary file when the write fails",
                          HINT_3)
    return "a save that loads back, and a failed save that leaves the old file intact and no temporary file behind"


SOLUTION_06_3 = '''
import os
import tempfile


def atomic_save(obj, path):
    """torch.save obj so that path always holds a complete file: a temporary file beside it, then os.replace."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # same file system
    os.close(handle)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)   # atomic: readers see the old file or the new one
    except BaseException:
        os.unlink(tmp)          # a failed write leaves nothing behind
        raise
'''

EX_3 = Exercise(
    id="06.3", lesson=LESSON, title="An atomic save", name="atomic_save",
    statement="""
Write `atomic_save(obj, path)` (`path` a `pathlib.Path`) that saves `obj` with `torch.save` so that `path`
always holds either the complete old file or the complete new one: save to a temporary file **in the same
folder**, then rename it over `path` with `os.replace`. If saving fails (for example `obj` holds a lambda,
which cannot be pickled), `path` keeps the old file, no temporary file is left behind, and the error reaches
the caller. `import os` / `import tempfile` in your cell as needed.

Correct means: the saved file loads back with `torch.load(path, weights_only=True)`; `torch.save` never
writes to `path` itself nor outside its folder; after a failing save, the error is raised, the old checkpoint
still loads and the folder holds nothing else. See section 5, *Why the write is atomic*.
""",
    template='''
def atomic_save(obj, path):
    """torch.save obj so that path always holds a complete file: a temporary file beside it, then os.replace."""
    raise NotImplementedError  # your code here
''',
    solution=SOLUTION_06_3,
    alternatives=['''
import os


def atomic_save(obj, path):
    tmp = path.with_name(path.name + ".partial")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    except Exception:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
'''],
    wrong_answers=[
        ("def atomic_save(obj, path):\n    torch.save(obj, path)\n", "calls torch.save on path itself"),
        ("import os\n\ndef atomic_save(obj, path):\n    tmp = path.with_suffix('.tmp')\n    torch.save(obj, tmp)\n"
         "    os.replace(tmp, path)\n", "left ['checkpoint.tmp'] behind"),
        (variant(SOLUTION_06_3,
            ('dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"', ''),
        ), "not in path's folder"),
        ("import os\n\ndef atomic_save(obj, path):\n    tmp = path.with_suffix('.tmp')\n    try:\n"
         "        torch.save(obj, tmp)\n        os.replace(tmp, path)\n    except Exception:\n"
         "        tmp.unlink(missing_ok=True)\n", "let the error reach the caller"),
    ],
    checker=check_atomic_save, hint=HINT_3,
)

EXERCISES = [EX_1, EX_2, EX_3]
