"""What a parity process runs: a Python with a runtime (PyTorch, or ONNX Runtime) and nothing of this course.

`pipeline.run_in_fresh_process` starts it as

    python -I -S fresh_process.py KIND SITE ARTIFACT INPUTS OUTPUT THREADS BLOCKED METADATA

KIND is pt2 or onnx; SITE the one folder imports may come from (where torch or onnxruntime is installed);
BLOCKED the comma-separated packages the process refuses to import; METADATA the name of the metadata inside
the artifact. Its first act is an import hook that raises on BLOCKED, so a pass proves that the artifact needs
none of them, not just that nothing imported them. Only the standard library is imported before that hook.
"""

import importlib.abc
import json
import sys


class Blocked(importlib.abc.MetaPathFinder):
    """An import hook that refuses a set of top-level packages (and everything below them)."""

    def __init__(self, names: list[str]):
        self.names = set(names)

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.names:
            raise ImportError(f"{name} may not be imported in this process")
        return None  # the other finders decide


def block(names: list[str]) -> None:
    """From now on, importing any of `names` raises ImportError."""
    sys.meta_path.insert(0, Blocked(names))


def run_pt2(artifact: str, inputs_file: str, output_file: str, metadata_file: str) -> None:
    """What a server with PyTorch but without this course does: torch.export.load, the metadata, run."""
    import torch

    extra_files = {metadata_file: ""}
    program = torch.export.load(artifact, extra_files=extra_files)
    inputs = torch.load(inputs_file, weights_only=True)
    with torch.no_grad():
        probs = [program.module()(images) for images in inputs]
    torch.save({"probs": probs, "metadata": json.loads(extra_files[metadata_file]), "sys_path": sys.path,
                "modules": sorted(sys.modules)}, output_file)


def run_onnx(artifact: str, inputs_file: str, output_file: str, metadata_key: str, threads: int) -> None:
    """The same with ONNX Runtime and NumPy only (torch is blocked too)."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(artifact, options, providers=["CPUExecutionProvider"])
    metadata = json.loads(session.get_modelmeta().custom_metadata_map[metadata_key])
    name = session.get_inputs()[0].name
    with np.load(inputs_file) as stored:
        probs = {key: session.run(None, {name: stored[key]})[0] for key in stored.files}
    np.savez(output_file, **probs)
    with open(output_file + ".json", "w") as f:
        json.dump({"metadata": metadata, "sys_path": sys.path, "modules": sorted(sys.modules)}, f)


def main(argv: list[str]) -> None:
    kind, site, artifact, inputs_file, output_file, threads, blocked, metadata = argv
    block(blocked.split(","))
    sys.path.append(site)  # the folder torch (or onnxruntime) is installed in, nothing else
    if kind == "pt2":
        run_pt2(artifact, inputs_file, output_file, metadata)
    elif kind == "onnx":
        run_onnx(artifact, inputs_file, output_file, metadata, int(threads))
    else:
        raise SystemExit(f"KIND must be pt2 or onnx, got {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
