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
    randint,
    spy,
    template_of,
    variant,
)

LESSON = "06_saving_loading"


def _small_model(gen: torch.Generator, sizes: tuple[int, int, int]) -> nn.Module:
    """A network with parameters and buffers (batch norm's running averages), its weights from gen."""
    n_in, n_hidden, n_out = sizes
    model = nn.Sequential(nn.Linear(n_in, n_hidden), nn.BatchNorm1d(n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_out))
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=gen))
        model[1].running_var.abs_()
        model[1].num_batches_tracked.fill_(randint(gen, 1, 99))
    return model


# ---------------------------------------------------------------- 06.1 load what fits

HINT_1 = ("section 9 (Errors you will meet: strict=False) and section 2 (What is in a model: the state_dict): "
          "load_state_dict(..., strict=False) skips missing and unexpected names, but still raises for a name "
          "whose shape differs")


def check_load_matching(load_matching) -> str:
    gen = generator("06.1")
    n_in, n_hidden, n_out, n_other = distinct_sizes(gen, 4, 2, 9)
    source = _small_model(gen, (n_in, n_hidden, n_other))             # its head has another number of classes
    state = dict(source.state_dict())
    state["extra.weight"] = torch.randn(2, 2, generator=gen)          # a name the model does not have
    del state["0.bias"]                                               # a name the file lacks
    model = _small_model(gen, (n_in, n_hidden, n_out))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    given = {k: v.clone() for k, v in state.items()}
    wanted = sorted(k for k, v in state.items() if k in before and before[k].shape == v.shape)
    try:
        loaded = call(load_matching, model, state, hint=HINT_1)
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        raise Mistake("load_state_dict raised for the names whose shape differs (the head: "
                      f"{n_other} classes in the file, {n_out} in the model); strict=False skips missing and "
                      "unexpected names, not shape mismatches: leave those entries out before loading", HINT_1) \
            from None
    if any(not torch.equal(given[k], v) for k, v in state.items()) or set(given) != set(state):
        raise Mistake("your code changed the state dict it was given: build a new dict instead", HINT_1)
    after = model.state_dict()
    for name in after:
        expected = state[name] if name in wanted else before[name]
        if not torch.equal(after[name], expected):
            if name in wanted:
                kind = "a buffer" if name not in dict(model.named_parameters()) else "a parameter"
                raise Mistake(f"the model's {name} ({kind} of the same name and shape in the state dict) was not "
                              "loaded: every entry of model.state_dict() whose name and shape match must be "
                              "loaded, buffers included", HINT_1)
            raise Mistake(f"the model's {name} changed although the state dict has no entry of that name and "
                          "shape: leave it as it was", HINT_1)
    if not isinstance(loaded, list):
        raise Mistake(f"load_matching returned {describe(loaded)}, expected a list of the names it loaded", HINT_1)
    if sorted(loaded) == wanted and loaded != wanted:
        raise Mistake(f"the names are right but not sorted: {loaded}; return sorted(...)", HINT_1)
    if loaded != wanted:
        extra, missing = sorted(set(loaded) - set(wanted)), sorted(set(wanted) - set(loaded))
        raise Mistake(f"load_matching returned {loaded}, expected {wanted}"
                      + (f": {extra} were not loaded" if extra else "")
                      + (f": {missing} were loaded but are not in your list" if missing else ""), HINT_1)
    return (f"{len(wanted)} of {len(after)} entries loaded (buffers included); the head of another shape, a name "
            "the model lacks and a name the file lacks skipped; the sorted names returned")


SOLUTION_1 = '''
def load_matching(model, state):
    """Load every entry of `state` whose name and shape match the model's; return the sorted names loaded."""
    own = model.state_dict()
    fitting = {}
    for name, tensor in state.items():
        if name in own and own[name].shape == tensor.shape:   # same name, same shape: it fits
            fitting[name] = tensor
    model.load_state_dict(fitting, strict=False)              # strict=False: the rest keep their values
    return sorted(fitting)
'''

EX_1 = Exercise(
    id="06.1", lesson=LESSON, title="Load what fits", name="load_matching",
    statement="""
Write `load_matching(model, state)` that loads into `model` every entry of the state dict `state` whose
name **and** shape match an entry of `model.state_dict()`, skips the rest, and returns the names it loaded.
This reuses a trained network whose head has another number of classes: `strict=False` alone still raises
for a name whose shape differs.

- **In:** `model`, an `nn.Module` (here with batch norm, whose running averages are buffers); `state`, a
  dict from names to tensors (another model's `state_dict`, possibly with other names and other shapes).
- **Out:** a `list` of the names loaded, sorted. Those entries of the model now equal `state`'s; every other
  entry of the model keeps its value; `state` must not change.
- **Use:** `model.state_dict()`, `load_state_dict(..., strict=False)` (or copying tensors under
  `torch.no_grad()`) and Python dicts.
- **Correct means:** on a state dict whose head has another shape, with a name the model lacks and a name the
  file lacks: exactly the matching entries loaded (parameters and buffers), the others unchanged, and the
  returned list equal to their sorted names.
- **Reread:** section 9, *Errors you will meet*.
""",
    template=template_of(SOLUTION_1),
    solution=SOLUTION_1,
    alternatives=['''
def load_matching(model, state):
    loaded = []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in state and state[name].shape == tensor.shape:
                tensor.copy_(state[name])
                loaded.append(name)
    return sorted(loaded)
'''],
    wrong_answers=[
        ("def load_matching(model, state):\n    result = model.load_state_dict(state, strict=False)\n"
         "    return sorted(k for k in state if k not in result.unexpected_keys)\n", "not shape mismatches"),
        (variant(SOLUTION_1, ("model.state_dict()", "dict(model.named_parameters())")), "buffers included"),
        (variant(SOLUTION_1, ("return sorted(fitting)", "return list(fitting)")), "not sorted"),
        ('''
def load_matching(model, state):
    own = model.state_dict()
    for name in list(state):
        if name not in own or own[name].shape != state[name].shape:
            del state[name]
    model.load_state_dict(state, strict=False)
    return sorted(state)
''', "changed the state dict it was given"),
        ('''
def load_matching(model, state):
    loaded = []
    with torch.no_grad():
        for (name, tensor), own in zip(state.items(), model.state_dict().values()):
            if own.shape == tensor.shape:
                own.copy_(tensor)
                loaded.append(name)
    return sorted(loaded)
''', "leave it as it was"),
    ],
    checker=check_load_matching, hint=HINT_1,
    more_hints=["build a new dict of only the entries that fit: the name is in model.state_dict() and the two "
                "tensors' .shape are equal; then load that dict with strict=False",
                "the names to return are the keys of the dict you loaded, in sorted order"],
)


# ---------------------------------------------------------------- 06.2 a checkpoint that rebuilds its model

HINT_2 = ("sections 3 and 4 (The plain recipe; The course's checkpoints) and section 6 (Loading safely): "
          "model_class(**model_config), load_state_dict(model_state), "
          "torch.load(path, map_location=..., weights_only=True), then eval()")


class _TinyNet(nn.Module):
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
    original = _TinyNet(**config)
    with torch.no_grad():
        for p in original.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny.pt"
        torch.save({"model_config": config, "model_state": original.state_dict(), "optimizer_state": None,
                    "epoch": 3}, path)
        with spy(torch, "load") as loads:
            try:
                model = call(load_model, path, _TinyNet, "cpu", hint=HINT_2)
            except TypeError as err:
                if "required positional argument" not in str(err) and "unexpected keyword" not in str(err):
                    raise
                raise Mistake(f"building the model failed ({err}): the class needs the checkpoint's "
                              "'model_config' as its keyword arguments, model_class(**config)", HINT_2) from None
    if not loads:
        raise Mistake("load_model never called torch.load", HINT_2)
    args, kwargs = loads[0]
    if kwargs.get("weights_only") is not True:
        raise Mistake("call torch.load with weights_only=True written out: the safe loader, which cannot run "
                      "code hidden in a file (older PyTorch versions defaulted to False)", HINT_2)
    if "map_location" not in kwargs and len(args) < 2:
        raise Mistake("pass map_location on to torch.load, so that a checkpoint saved on a GPU loads here", HINT_2)
    if not isinstance(model, _TinyNet):
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


SOLUTION_2 = '''
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
Write `load_model(path, model_class, map_location)` that loads the checkpoint at `path` and returns the model
it describes, rebuilt with its weights, in **evaluation mode**, ready to predict.

- **In:** `path`, a `pathlib.Path` to a file holding a dict with `"model_config"` (the keyword arguments of
  the model's constructor), `"model_state"` (its `state_dict`), `"optimizer_state"` and `"epoch"`;
  `model_class`, the model's class; `map_location`, where to put the tensors (e.g. `"cpu"`).
- **Out:** a new `model_class(**model_config)` with the saved weights, in eval mode.
- **Use:** `torch.load` with `map_location` passed on and `weights_only=True` written out,
  `load_state_dict`, `eval()`.
- **Correct means:** an instance of `model_class` whose predictions equal the saved model's exactly, in eval
  mode, loaded by a `torch.load` call given `weights_only=True` and `map_location`.
- **Reread:** section 4, *Checkpoints: rebuild the model, resume training*.
""",
    template=template_of(SOLUTION_2),
    solution=SOLUTION_2,
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
        (variant(SOLUTION_2, ('model.eval()', 'model')), "left the model in training mode"),
        (variant(SOLUTION_2, ('map_location, weights_only=True', 'map_location')), "weights_only=True"),
        (variant(SOLUTION_2,
                 ('    model.load_state_dict(checkpoint["model_state"])\n', '')),
         "predicts differently"),
        (variant(SOLUTION_2, ('**checkpoint["model_config"]', '')),
         "the class needs the checkpoint's 'model_config'"),
        (variant(SOLUTION_2, ('map_location=map_location, ', '')), "pass map_location on"),
    ],
    checker=check_load_model, hint=HINT_2,
    more_hints=["torch.load(path, map_location=..., weights_only=True) gives back the dict; its 'model_config' "
                "unpacks with ** into the class",
                "a freshly built model starts in training mode: call .eval() on it after load_state_dict"],
)


# ---------------------------------------------------------------- 06.3 an atomic save

HINT_3 = ("section 5 (Why the write is atomic): torch.save to a temporary file in the same folder, then "
          "os.replace it over the target; if the write fails, delete the temporary file and re-raise")


def _saved_to(args: tuple, kwargs: dict) -> Path | None:
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
        targets = [_saved_to(a, k) for a, k in saves]
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


SOLUTION_3 = '''
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
Write `atomic_save(obj, path)` that saves `obj` with `torch.save` so that `path` always holds either the
complete old file or the complete new one: save to a temporary file **in the same folder**, then rename it
over `path` with `os.replace`. If saving fails (for example `obj` holds a lambda, which cannot be pickled),
`path` keeps the old file, no temporary file is left behind, and the error reaches the caller.

- **In:** `obj`, what to save (here a dict of tensors); `path`, a `pathlib.Path`.
- **Out:** nothing; afterwards `path` holds `obj`, and nothing else is left in its folder. A failed save
  raises its error and leaves the old file at `path` as it was.
- **Use:** `torch.save`, `os.replace`, and `tempfile` or a temporary name beside `path`; `import os` and
  `import tempfile` in your cell as needed (they are not imported for you).
- **Correct means:** the saved file loads back with `torch.load(path, weights_only=True)`; `torch.save` never
  writes to `path` itself nor outside its folder; after a failing save the error is raised, the old checkpoint
  still loads, and the folder holds nothing else.
- **Reread:** section 5, *Why the write is atomic*.
""",
    template='''
def atomic_save(obj, path):
    """torch.save obj so that path always holds a complete file: a temporary file beside it, then os.replace."""
    raise NotImplementedError  # your code here
''',
    solution=SOLUTION_3,
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
        (variant(SOLUTION_3,
            ('dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"', ''),
        ), "not in path's folder"),
        ("import os\n\ndef atomic_save(obj, path):\n    tmp = path.with_suffix('.tmp')\n    try:\n"
         "        torch.save(obj, tmp)\n        os.replace(tmp, path)\n    except Exception:\n"
         "        tmp.unlink(missing_ok=True)\n", "let the error reach the caller"),
    ],
    checker=check_atomic_save, hint=HINT_3,
    more_hints=["tempfile.mkstemp(dir=path.parent) makes a fresh file beside path (close the handle it "
                "returns); os.replace(temporary, path) then swaps it in at once",
                "wrap the save and the replace in try/except: on an error, delete the temporary file and write a "
                "bare `raise` so the caller still sees the error"],
)

EXERCISES = [EX_1, EX_2, EX_3]
