"""Lesson 06: answers written by an independent learner from the statements alone."""

RIGHT = {
    "06.1": [
        """
def load_matching(model, state):
    own = model.state_dict()
    fitting = {name: tensor for name, tensor in state.items()
               if name in own and own[name].shape == tensor.shape}
    model.load_state_dict(fitting, strict=False)
    return sorted(fitting)
""",
        """
def load_matching(model, state):
    own = model.state_dict()  # these tensors share memory with the model's
    loaded = []
    with torch.no_grad():
        for name in own:
            if name in state and tuple(state[name].shape) == tuple(own[name].shape):
                own[name].copy_(state[name])
                loaded.append(name)
    loaded.sort()
    return loaded
""",
    ],
    "06.2": [
        """
def load_model(path, model_class, map_location):
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model = model_class(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    model.eval()
    return model
""",
        """
def load_model(path, model_class, map_location):
    data = torch.load(str(path), weights_only=True, map_location=map_location)
    config = dict(data["model_config"])
    net = model_class(**config)
    net.load_state_dict(data["model_state"], strict=True)
    return net.eval()
""",
    ],
    "06.3": [
        """
import os
import tempfile


def atomic_save(obj, path):
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        torch.save(obj, temporary)
        os.replace(temporary, path)
    except BaseException:
        os.remove(temporary)
        raise
""",
        """
import os


def atomic_save(obj, path):
    temporary = path.with_name(path.name + ".partial")
    try:
        with open(temporary, "wb") as file:
            torch.save(obj, file)
    except Exception:
        if temporary.exists():
            temporary.unlink()
        raise
    os.replace(temporary, path)
""",
    ],
}

WRONG = {
    "06.1": [
        # strict=False alone: raises for the head whose shape differs
        """
def load_matching(model, state):
    own = model.state_dict()
    model.load_state_dict(state, strict=False)
    return sorted(name for name in state if name in own)
""",
        # checks the names but not the shapes... and so skips nothing by shape: tries to copy and fails
        """
def load_matching(model, state):
    own = model.state_dict()
    names = sorted(name for name in state if name in own)
    model.load_state_dict({name: state[name] for name in names if state[name].dim() == own[name].dim()},
                          strict=False)
    return names
""",
        # loads only the parameters, not the batch-norm buffers
        """
def load_matching(model, state):
    loaded = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in state and state[name].shape == p.shape:
                p.copy_(state[name])
                loaded.append(name)
    return sorted(loaded)
""",
    ],
    "06.2": [
        # forgets eval()
        """
def load_model(path, model_class, map_location):
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model = model_class(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    return model
""",
        # does not pass map_location on
        """
def load_model(path, model_class, map_location):
    checkpoint = torch.load(path, weights_only=True)
    model = model_class(**checkpoint["model_config"])
    model.load_state_dict(checkpoint["model_state"])
    return model.eval()
""",
    ],
    "06.3": [
        # the temporary file is in the system's temp folder, not beside path
        """
import os
import tempfile


def atomic_save(obj, path):
    handle, temporary = tempfile.mkstemp()
    os.close(handle)
    torch.save(obj, temporary)
    os.replace(temporary, path)
""",
        # leaves the temporary file behind when saving fails
        """
import os


def atomic_save(obj, path):
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)
""",
        # writes straight to path
        """
def atomic_save(obj, path):
    torch.save(obj, path)
""",
    ],
}

# Answers added after a first pass, other styles and other slips.

# map_location passed positionally
RIGHT["06.2"].append("""
def load_model(path, model_class, map_location):
    ckpt = torch.load(path, map_location, weights_only=True)
    model = model_class(**ckpt["model_config"])
    model.load_state_dict(ckpt["model_state"])
    return model.eval()
""")

# NamedTemporaryFile in the same folder, torch.save to the open file
RIGHT["06.3"].append("""
import os
import tempfile


def atomic_save(obj, path):
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        name = handle.name
        try:
            torch.save(obj, handle)
        except Exception:
            handle.close()
            os.unlink(name)
            raise
    os.replace(name, path)
""")

# the names returned unsorted
WRONG["06.1"].append("""
def load_matching(model, state):
    own = model.state_dict()
    fit = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(fit, strict=False)
    return list(fit)
""")

# weights_only=True not written out
WRONG["06.2"].append("""
def load_model(path, model_class, map_location):
    ckpt = torch.load(path, map_location=map_location)
    model = model_class(**ckpt["model_config"])
    model.load_state_dict(ckpt["model_state"])
    return model.eval()
""")
