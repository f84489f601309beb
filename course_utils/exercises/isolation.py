"""Running a learner's answer code: quietly, under a time limit, and (for progress) in a child process that the
parent kills on a deadline, so that an answer that loops, exits or changes global state cannot stop the others.

The child is `python -m course_utils.exercises.isolation`: it reads the jobs (JSON) on stdin and writes one JSON
line when it starts each answer and one with its Result, on what was its stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from course_utils.exercises.framework import Exercise, Result, exec_answer, run_check
from course_utils.exercises.state import standard_settings

# per answer: one that loops forever counts as unsolved, it does not hang progress; the slowest reference (13.3's
# first torch.export in a process) takes 3 s on a busy 2-core machine and over 10 s when it is very busy
CHECK_SECONDS = 30.0
GRACE_SECONDS = 2.0   # how long after the child's own alarm the parent kills it (the alarm can be caught)
START_SECONDS = 300.0  # a child's imports (torch, every lesson module) on a slow, busy machine


class Expired(BaseException):
    """The time limit of one answer ran out (a BaseException, so that `except Exception` in the answer misses it)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """One answer to check: the exercise id, the answer cell's code, and the file name its tracebacks show."""

    exercise_id: str
    code: str
    label: str


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise Expired in the block after `seconds` (where SIGALRM exists; elsewhere only the parent's kill)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread
        return

    def expire(signum, frame):
        raise Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed_out(seconds: float) -> Result:
    """The Result of an answer stopped after `seconds`."""
    return Result("timed out", f"took longer than {seconds:g} s (an endless loop, or far too much work?)")


def try_code(exercise: Exercise, code: str, label: str, seconds: float = CHECK_SECONDS) -> Result:
    """Run answer code and its exercise's check quietly; return the Result (status 'error' if the code fails).

    PyTorch's global settings and random state are put back afterwards, so the next answer starts as this one did.
    """
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), standard_settings():
        try:
            with time_limit(seconds):
                answer = exec_answer(code, exercise.name, label)
                return run_check(exercise, answer, exercise.rule_settings)
        except NotImplementedError:
            return Result("not attempted", "")
        except Expired:
            return timed_out(seconds)
        except (Exception, SystemExit) as err:  # noqa: BLE001 - an answer that does not even run is unsolved
            return Result("error", f"your code raised {type(err).__name__}: {str(err).strip() or '(no message)'}")


# ---------------------------------------------------------------- the parent: one child per batch of answers

def check_in_children(jobs: list[Job], seconds: float = CHECK_SECONDS) -> list[Result]:
    """One Result per job, in order: checked in a child process, a fresh one for the rest after one is stopped."""
    results: list[Result] = []
    while len(results) < len(jobs):
        results += _check_in_one_child(jobs[len(results):], seconds)
    return results


def _child_env() -> dict[str, str]:
    """The environment of a child: this one, with this course_utils first on the path."""
    root = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
    return env


def _read_messages(stream, messages: queue.Queue) -> None:
    """Put each JSON line of the child's channel on the queue, then None at its end."""
    for line in stream:
        with contextlib.suppress(ValueError):  # not one of ours: ignored
            messages.put(json.loads(line))
    messages.put(None)


def _check_in_one_child(jobs: list[Job], seconds: float) -> list[Result]:
    """Results for the first jobs, at least one: all of them, or up to the answer that stopped the child."""
    request = {"seconds": seconds, "jobs": [dataclasses.asdict(job) for job in jobs]}
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stderr:
        stdin.write(json.dumps(request).encode())
        stdin.seek(0)
        process = subprocess.Popen([sys.executable, "-m", __name__], stdin=stdin, stdout=subprocess.PIPE,
                                   stderr=stderr, env=_child_env())
        messages: queue.Queue = queue.Queue()
        threading.Thread(target=_read_messages, args=(process.stdout, messages), daemon=True).start()
        try:
            return _collect(process, messages, len(jobs), seconds, stderr)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()


def _collect(process: subprocess.Popen, messages: queue.Queue, count: int, seconds: float, stderr) -> list[Result]:
    """Read the child's messages until `count` Results, or until it ends or overruns (then the last says why)."""
    results: list[Result] = []
    deadline, started = time.monotonic() + START_SECONDS, False
    while len(results) < count:
        try:
            message = messages.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            process.kill()  # a kill the answer cannot catch, unlike the child's own alarm
            if not started:
                return [Result("crash", f"the process that checks answers did not start within {START_SECONDS:g} "
                                        "s; please report this")] * count
            return [*results, timed_out(seconds)]
        if message is None:
            return results + _ended(process.wait(), started, count - len(results), stderr)
        started = True
        if "start" in message:
            deadline = time.monotonic() + seconds + GRACE_SECONDS
        else:
            results.append(Result(message["status"], message["message"], message["hint"], message["note"]))
    return results


def _ended(code: int, started: bool, left: int, stderr) -> list[Result]:
    """Why the child ended before its last Result: for the answer it was checking (or all, if it never started)."""
    if not started:
        stderr.seek(0)
        last = (stderr.read().decode(errors="replace").strip().splitlines() or ["no message"])[-1]
        return [Result("crash", f"the process that checks answers failed to start ({last}); please report this")] \
            * left
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        return [Result("exited", f"the process checking it was killed by {name} (out of memory, or a crash in "
                                 "native code?)")]
    return [Result("exited", f"your code ended the process checking it (exit status {code}: os._exit?), so the check "
                             "could not finish")]


# ---------------------------------------------------------------- the child

def serve() -> None:
    """Check the jobs on stdin one by one, reporting on the channel that was stdout; the answers' output is dropped."""
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the answers cannot write on the channel
    request = json.load(sys.stdin)
    from course_utils.exercises import EXERCISES
    for i, job in enumerate(Job(**job) for job in request["jobs"]):
        print(json.dumps({"start": i}), file=channel, flush=True)
        result = try_code(EXERCISES[job.exercise_id], job.code, job.label, request["seconds"])
        print(json.dumps({"done": i, **dataclasses.asdict(result)}), file=channel, flush=True)
    channel.close()
    os._exit(0)  # not waiting for threads an answer may have started


if __name__ == "__main__":
    serve()
