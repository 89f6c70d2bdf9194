"""Waiting on child processes by their own progress, not by a total time tuned on one machine.

A test that starts a recipe, a tuner or a worker as a subprocess cannot know how long it takes
on a loaded 2-core CI machine (TensorFlow alone can take a minute to import there). So it waits
as long as the child shows signs of life, its output growing or files under the folders it
writes changing, and gives up only after a long stall (``stall_seconds`` with no change at all):
it then asks the child for its Python stacks (``SIGABRT`` with faulthandler on), kills it, and
fails the test with the end of its output.

    process = start([sys.executable, "recipes/autoencoder.py", ...], tmp_path / "run.log")
    returncode = wait_while_progressing(process, [tmp_path / "run"])

``wait_until`` waits the same way for a condition (a file appearing, a log line), which is how
the real-kill tests pick their moments.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

#: How long a child may show no sign of life before it is taken as hung. Generous: the longest
#: silent stretch measured is TensorFlow's import plus building the first model, 15-70 s on a
#: 2-core machine; a hang is caught at this distance instead of at a total that a slow machine
#: could exceed while still working.
STALL_SECONDS = 300.0
#: How often the child and its files are looked at.
POLL_SECONDS = 0.05


def child_env(**overrides) -> dict:
    """The environment for a child: this one, with the repository on ``PYTHONPATH`` (the tests
    run the checkout, not whatever is installed), faulthandler on (``SIGABRT`` dumps its Python
    stacks, which a stall uses), and ``overrides``; a value of None removes that variable."""
    repo = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    env["PYTHONFAULTHANDLER"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def start(argv, log_path, *, stderr_path=None, env=None, cwd=None) -> subprocess.Popen:
    """Start ``argv`` with stdout (and stderr, unless ``stderr_path`` names a file of its own)
    going to ``log_path``, kept on the process as ``process.log_path`` (and ``stderr_path``);
    the logs are what progress is judged by and what a failure shows. The working folder is
    the repository's unless ``cwd`` says otherwise."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    repo = Path(__file__).resolve().parents[1]
    with contextlib.ExitStack() as files:
        log = files.enter_context(open(log_path, "ab"))
        err = files.enter_context(open(stderr_path, "ab")) if stderr_path else subprocess.STDOUT
        process = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=err,
                                   env=env if env is not None else child_env(),
                                   cwd=str(cwd or repo))
    process.log_path = log_path
    process.stderr_path = Path(stderr_path) if stderr_path else None
    return process


def output_of(process, tail: int = 4000) -> str:
    """The end of what ``process`` (started by ``start``) has written so far."""
    text = ""
    for path in (getattr(process, "log_path", None), getattr(process, "stderr_path", None)):
        if path is not None and Path(path).is_file():
            text += Path(path).read_text(errors="replace")
    return text[-tail:]


def fingerprint(paths) -> tuple:
    """What changes when a child makes progress: (path, size, mtime) of every file in or under
    ``paths`` (files or folders; missing ones are skipped)."""
    seen = []
    for root in paths:
        root = Path(root)
        if root.is_file():
            candidates = [root]
        elif root.is_dir():
            candidates = []
            for folder, _, names in os.walk(root):
                candidates.extend(Path(folder) / name for name in names)
        else:
            continue
        for path in candidates:
            try:
                stat = path.stat()
            except OSError:  # removed (a temporary file renamed) while walking
                continue
            seen.append((str(path), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(seen))


def wait_until(condition, processes, watched=(), *, stall_seconds: float = STALL_SECONDS,
               poll_seconds: float = POLL_SECONDS) -> bool:
    """Wait until ``condition()`` is true (True), or every process in ``processes`` (one or a
    list) has exited (False, once ``condition`` is checked a last time).

    The wait has no total bound: it goes on while the processes' logs or the files under
    ``watched`` keep changing. After ``stall_seconds`` with no change, the processes still
    running are stopped (stacks dumped, then killed) and the test fails with their output.
    """
    processes = list(processes) if isinstance(processes, (list, tuple)) else [processes]
    paths = [*watched, *(path for p in processes
                         for path in (getattr(p, "log_path", None), getattr(p, "stderr_path", None))
                         if path is not None)]
    last, last_change = fingerprint(paths), time.monotonic()
    while True:
        if condition():
            return True
        if all(p.poll() is not None for p in processes):
            return bool(condition())
        now = fingerprint(paths)
        if now != last:
            last, last_change = now, time.monotonic()
        elif time.monotonic() - last_change > stall_seconds:
            stop(processes)
            outputs = "\n".join(f"--- pid {p.pid} (exit {p.returncode}):\n{output_of(p)}"
                                for p in processes)
            pytest.fail(f"no progress for {stall_seconds:.0f} s (no output, no file changed "
                        f"under {[str(w) for w in watched]}): stopped\n{outputs}")
        time.sleep(poll_seconds)


def wait_while_progressing(processes, watched=(), *, stall_seconds: float = STALL_SECONDS,
                           poll_seconds: float = POLL_SECONDS):
    """Wait for ``processes`` (one or a list) to exit, as long as they make progress (see
    ``wait_until``); returns the exit status (one process) or the list of them."""
    single = not isinstance(processes, (list, tuple))
    group = [processes] if single else list(processes)
    wait_until(lambda: all(p.poll() is not None for p in group), group, watched,
               stall_seconds=stall_seconds, poll_seconds=poll_seconds)
    codes = [p.wait() for p in group]
    return codes[0] if single else codes


def stop(processes, grace: float = 5.0) -> None:
    """End whatever is still running of ``processes``: ``SIGABRT`` first (with faulthandler on,
    the child writes its Python stacks to its log), then ``SIGKILL`` after ``grace`` seconds."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        try:
            process.send_signal(signal.SIGABRT if sys.platform != "win32" else signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + grace
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def kill(process) -> int:
    """``SIGKILL`` now, as the kernel's OOM killer or a lost machine would; waits for the exit
    and returns its status (-9 when the signal was what ended it)."""
    if process.poll() is None:
        process.kill()
    return process.wait()
