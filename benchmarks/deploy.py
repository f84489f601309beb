"""Time the deployed pipeline three ways: eager PyTorch, the torch.export .pt2, ONNX Runtime; batch 1 and 32.

    python benchmarks/deploy.py [--threads 1] [--repeats 7] [--batch-sizes 1 32] [--pt2 X.pt2 --onnx X.onnx] [--json F]

Without --pt2/--onnx it builds lesson 13's pipeline (08's checkpoint when there is one, else
Lite0 with an untrained head: the same arithmetic, so the same time) and exports both itself.
One process, one thread by default; each figure is the median of --repeats timed runs after a
warm-up run. Inputs are random uint8 photos of 256 x 341 pixels (a typical mirror photo).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere, as a script

from course_utils.core import devices
from course_utils.deploy import pipeline, predict
from course_utils.models import backbones, cat_dog

PHOTO_SIZE = (256, 341)  # height, width


def lesson_pipeline() -> pipeline.InferencePipeline:
    """Lesson 13's pipeline: 08's model when saved, else Lite0 with a fresh 2-class head."""
    if cat_dog.CHECKPOINT.is_file():
        model, facts = cat_dog.load(cat_dog.CHECKPOINT)
        class_names = facts["class_names"]
    else:
        model, class_names = backbones.efficientnet_lite0(2).eval(), ["cat", "dog"]
    return pipeline.InferencePipeline(model, class_names, backbones.LITE0_INPUT_SIZE, backbones.LITE0_MEAN,
                                      backbones.LITE0_STD).eval()


def median_seconds(run, images: torch.Tensor, repeats: int) -> float:
    """Median wall time of `repeats` calls of run(images), after one untimed warm-up call."""
    run(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def benchmark(runners: dict, batch_sizes: list[int], repeats: int, seed: int = 0) -> list[dict]:
    """One row per batch size: {"batch", <name>: seconds per batch, ...} for each runner."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for batch in batch_sizes:
        images = torch.randint(0, 256, (batch, 3, *PHOTO_SIZE), dtype=torch.uint8, generator=generator)
        rows.append({"batch": batch, **{name: median_seconds(run, images, repeats) for name, run in runners.items()}})
    return rows


def table(rows: list[dict]) -> str:
    """A Markdown table: ms per batch and per photo for each runner, and the ratios to eager."""
    names = [key for key in rows[0] if key != "batch"]
    lines = ["| batch | " + " | ".join(f"{n} ms/photo" for n in names) + " | "
             + " | ".join(f"eager / {n}" for n in names[1:]) + " |",
             "|---" * (1 + 2 * len(names) - 1) + "|"]
    for row in rows:
        per_photo = [1000 * row[n] / row["batch"] for n in names]
        ratios = [row[names[0]] / row[n] for n in names[1:]]
        lines.append(f"| {row['batch']} | " + " | ".join(f"{t:.1f}" for t in per_photo) + " | "
                     + " | ".join(f"{r:.2f}x" for r in ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and ONNX Runtime")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per figure (the median is shown)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--pt2", type=Path, help="an exported .pt2 (default: export one now)")
    parser.add_argument("--onnx", type=Path, help="an exported .onnx (default: export one now)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows (seconds per batch) to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or min(args.batch_sizes) < 1:
        parser.error("--repeats, --threads and every batch size must be at least 1")
    devices.set_threads(args.threads)
    pipe = lesson_pipeline()
    with tempfile.TemporaryDirectory() as scratch:
        pt2 = args.pt2 or pipeline.save_artifact(pipeline.export_pipeline(pipe), pipe.metadata(),
                                                 Path(scratch) / "b.pt2")
        onnx = args.onnx or pipeline.export_onnx(pipe, pipe.metadata(), Path(scratch) / "b.onnx")
        def eager(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return pipe(images)

        try:
            runners = {"eager": eager,
                       ".pt2": predict.load_artifact(pt2).run, "ONNX Runtime": predict.load_artifact(onnx).run}
        except predict.PredictError as err:
            print(f"deploy benchmark: error: {err}", file=sys.stderr)
            return 2
        rows = benchmark(runners, args.batch_sizes, args.repeats, args.seed)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), photos {PHOTO_SIZE[1]}x{PHOTO_SIZE[0]}, "
          f"median of {args.repeats} runs")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
