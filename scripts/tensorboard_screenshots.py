"""Screenshots of TensorBoard showing lesson 14's own run, for the lesson to show (notebooks/figures/).

Run lesson 14 first (it writes runs/tensorboard/14_tensorboard), then:

    .venv/bin/python scripts/tensorboard_screenshots.py

It starts TensorBoard on 127.0.0.1 (a free port), opens each dashboard in headless Chromium (Debian's
chromium and chromium-driver, as the browser test uses) and saves one PNG per dashboard.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from course_utils.tools import chromium

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "runs" / "tensorboard" / "14_tensorboard"
OUT = ROOT / "notebooks" / "figures"
# dashboard (TensorBoard's URL fragment) -> the file the lesson shows
DASHBOARDS = {"scalars&tagFilter=%5Eval%2F": "14_tensorboard_scalars.png", "images": "14_tensorboard_images.png",
              "histograms": "14_tensorboard_histograms.png", "hparams": "14_tensorboard_hparams.png"}


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_tensorboard(logdir: Path, port: int) -> subprocess.Popen:
    """TensorBoard on 127.0.0.1:port, answering, in a process group of its own."""
    # started in the run folder with --logdir ., so the pages show "." rather than this machine's path
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", ".", "--host", "127.0.0.1",
               "--port", str(port), "--reload_interval", "0"]
    server = subprocess.Popen(command, cwd=logdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5).read()
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit(f"tensorboard exited with status {server.returncode}") from None
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGTERM)
    raise SystemExit("tensorboard did not answer within 120 s")


def browser(profile: str):
    """Headless Chromium that may reach 127.0.0.1 only."""
    from selenium import webdriver

    return webdriver.Chrome(service=chromium.service(), options=chromium.options(profile, "1280,900"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--logdir", type=Path, default=RUN, help="the run folder (default: lesson 14's)")
    parser.add_argument("--out", type=Path, default=OUT, help="where the PNGs go (default: notebooks/figures)")
    parser.add_argument("--wait", type=float, default=8.0, help="seconds each dashboard gets to draw")
    args = parser.parse_args(argv)
    if not (args.logdir / "main").is_dir():
        parser.error(f"--logdir {args.logdir} holds no lesson 14 run (main/): execute lesson 14 first")
    args.out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server = start_tensorboard(args.logdir, port)
    try:
        with tempfile.TemporaryDirectory() as profile:
            driver = browser(profile)
            try:
                for dashboard, name in DASHBOARDS.items():
                    driver.get(f"http://127.0.0.1:{port}/#{dashboard}")
                    time.sleep(args.wait)  # TensorBoard fetches and draws after the page has loaded
                    driver.save_screenshot(str(args.out / name))
                    print("wrote", (args.out / name).relative_to(ROOT) if args.out.is_relative_to(ROOT) else name)
            finally:
                driver.quit()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
