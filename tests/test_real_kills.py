"""Real kills from outside the process (issue 32): a recipe started as a subprocess is killed
with SIGKILL at a chosen moment, rerun with the same command, and must finish as if nothing
had happened: exit 0, ``metrics.json`` equal to an uninterrupted run with the same seed, and no
file lost or torn. SIGTERM must end a run like Ctrl-C: state kept, one line, exit status 143.

The moments are picked by polling the run folder (``tests/processes.py``), not by sleeping a
time tuned on one machine: the kill comes when the file that marks the moment appears.

Training is deterministic on CPU TensorFlow with a fixed seed, so the comparison is tight: every
number in ``metrics.json`` (all but its ``run`` section: command, timings, load) must match to a
relative 1e-6, where two uninterrupted runs agree exactly.
"""

import json
import math
import sys
import time
from pathlib import Path

import pytest

from tests import processes

EPOCHS = 3
#: A small, complete run: 300 examples a split, 3 epochs of 19 steps, the probe's 30 epochs,
#: the whole report. About 25 s uninterrupted on a 2-core machine (TensorFlow's import included).
#: float32, not --precision auto: the same computation on every CPU (auto picks bfloat16 where
#: the CPU has bf16 instructions, and a model reloaded on a rerun computes in float32 there).
RECIPE = ["recipes/autoencoder.py", "--dataset", "mnist", "--limit", "300",
          "--epochs", str(EPOCHS), "--batch-size", "16", "--precision", "float32", "--quiet"]
#: The tolerance of the comparison (relative, on every number of metrics.json but ``run``).
RELATIVE = 1e-6
#: Polling often enough to land inside a checkpoint write (the resume state's weights take
#: about 0.1 s to write, best.keras about 0.35 s, measured on 2 cores).
POLL = 0.005


def _start(out: Path, log: Path, **kwargs):
    return processes.start([sys.executable, *RECIPE, "--output", out], log, **kwargs)


def _finish(out: Path, log: Path):
    """Run the recipe into ``out`` to its end; returns its metrics."""
    process = _start(out, log)
    returncode = processes.wait_while_progressing(process, [out])
    assert returncode == 0, processes.output_of(process)
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("uninterrupted")
    return _finish(root / "run", root / "run.log")


# ----------------------------------------------------------------------- the kill moments


def _temporary(folder: Path, name: str) -> bool:
    """A temporary file of a save to ``folder/name`` exists (``atomic_path``'s ``.name.*``)."""
    return any(folder.glob(f".{name}.*"))


def _epochs_logged(out: Path) -> int:
    path = out / "checkpoints" / "training_log.csv"
    return max(0, len(path.read_text().splitlines()) - 1) if path.is_file() else 0


def _after(delay, condition):
    """``condition``, then true ``delay`` seconds after it first was."""
    since = []

    def check():
        if not since and condition():
            since.append(time.monotonic())
        return bool(since) and time.monotonic() - since[0] >= delay

    return check


def _mid_epoch(out):
    # Epoch 1's steps: epoch 0's resume state is saved, and an epoch of 19 steps lasts 0.6 s
    # or more; the kill comes 0.2 s in.
    backup = out / "checkpoints" / "backup"
    return _after(0.2, lambda: (backup / "training_metadata.json").is_file())


def _checkpoint_write(out):
    # While the resume state's weights are replaced after epoch 1 or 2 (epoch 0's or 1's state
    # in place): the write a rerun depends on.
    backup = out / "checkpoints" / "backup"
    return lambda: ((backup / "latest.weights.h5").is_file()
                    and _temporary(backup, "latest.weights.h5"))


def _probe(out):
    # phases.json records the autoencoder and not yet the probe: the probe is training (about
    # 7 s on 2 cores); the kill comes 1 s in.
    def probe_running():
        try:
            phases = json.loads((out / "phases.json").read_text())["phases"]
        except (OSError, ValueError, KeyError):
            return False
        return "autoencoder" in phases and "probe" not in phases

    return _after(1.0, probe_running)


def _evaluation(out):
    # The report's first figure is being written (its temporary .<name>.png.* file counts) or
    # is written, metrics.json not yet.
    return lambda: any(out.glob("*.png")) and not (out / "metrics.json").exists()


KILL_POINTS = {
    "mid_epoch": _mid_epoch,
    "checkpoint_write": _checkpoint_write,
    "probe": _probe,
    "evaluation": _evaluation,
}



def _numbers_differ(expected, got, path="metrics"):
    """``[(path, expected, got)]`` for each value that differs beyond ``RELATIVE``."""
    if isinstance(expected, dict) and isinstance(got, dict):
        differ = [(f"{path}.{key}", expected.get(key), got.get(key))
                  for key in set(expected) ^ set(got)]
        for key in set(expected) & set(got):
            differ += _numbers_differ(expected[key], got[key], f"{path}.{key}")
        return differ
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        return [d for i, (e, g) in enumerate(zip(expected, got))
                for d in _numbers_differ(e, g, f"{path}[{i}]")]
    if (isinstance(expected, (int, float)) and isinstance(got, (int, float))
            and not isinstance(expected, bool)):
        same = math.isclose(expected, got, rel_tol=RELATIVE, abs_tol=1e-12)
        return [] if same else [(path, expected, got)]
    return [] if expected == got else [(path, expected, got)]


def _headline_first(difference):
    """Sort key: single figures (accuracy, MAE...) before the entries of long lists."""
    return ("[" in difference[0], difference[0])


def _lost_or_torn(out: Path) -> list:
    """What is wrong with the files of the finished run in ``out``, one line each: leftover
    temporary files, JSON that does not parse, models that do not load, a training log without
    exactly one whole row per epoch, a resume state left behind."""
    import keras

    from keras_latent import serializables  # noqa: F401  (registers the custom classes)

    problems = [f"temporary file left behind: {path.relative_to(out)}"
                for path in sorted(out.rglob(".*")) if path.is_file()]
    for path in sorted(out.rglob("*.json")):
        try:
            json.loads(path.read_text())
        except ValueError as error:
            problems.append(f"{path.relative_to(out)} does not parse: {error}")
    for path in sorted(out.rglob("*.keras")):
        try:
            keras.saving.load_model(path)
        except Exception as error:  # noqa: BLE001 - whatever fails to load is the finding
            problems.append(f"{path.relative_to(out)} does not load: {error}")
    lines = (out / "checkpoints" / "training_log.csv").read_text().splitlines()
    header = lines[0].split(",") if lines else []
    rows = [line.split(",") for line in lines[1:]]
    if (header[:1] != ["epoch"] or [row[0] for row in rows] != [str(e) for e in range(EPOCHS)]
            or not all(len(row) == len(header) and all(row) for row in rows)):
        problems.append(f"training_log.csv is not one whole row per epoch 0..{EPOCHS - 1}: "
                        + " | ".join(lines))
    if (out / "checkpoints" / "backup").exists():
        problems.append("the finished run left its resume state (checkpoints/backup)")
    return problems


def _check_nothing_lost_or_torn(out: Path):
    problems = _lost_or_torn(out)
    assert not problems, "; ".join(problems)


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_run_killed_and_rerun_ends_as_if_never_killed(point, uninterrupted, tmp_path):
    out = tmp_path / "run"
    process = _start(out, tmp_path / "killed.log")
    reached = processes.wait_until(KILL_POINTS[point](out), process, [out], poll_seconds=POLL)
    status = processes.kill(process)
    assert reached, (f"the run ended (exit {status}) before the kill point '{point}':\n"
                     f"{processes.output_of(process)}")
    assert status == -9, f"exit {status}, not the kill's:\n{processes.output_of(process)}"

    metrics = _finish(out, tmp_path / "rerun.log")

    problems = _lost_or_torn(out)
    expected = {k: v for k, v in uninterrupted.items() if k != "run"}
    got = {k: v for k, v in metrics.items() if k != "run"}
    differ = _numbers_differ(expected, got)
    if differ:
        problems.append(f"{len(differ)} values of metrics.json differ from the uninterrupted "
                        "run's (uninterrupted vs rerun): " + "; ".join(
                            f"{p} {e!r} vs {g!r}"
                            for p, e, g in sorted(differ, key=_headline_first)[:12]))
    assert not problems, f"killed at '{point}' and rerun: " + "\n".join(problems)


def test_sigterm_saves_the_state_and_ends_with_one_line_and_143(uninterrupted, tmp_path):
    """SIGTERM (what ``kill``, systemd and batch schedulers send) is handled like Ctrl-C: the
    run stops with one line on stderr saying how to resume and the shell's status for it,
    128 + 15; the rerun finishes from the saved state."""
    out = tmp_path / "run"
    err = tmp_path / "stderr.log"
    process = _start(out, tmp_path / "stdout.log", stderr_path=err)
    reached = processes.wait_until(_mid_epoch(out), process, [out], poll_seconds=POLL)
    assert reached, processes.output_of(process)
    before = len(err.read_text().splitlines())  # TensorFlow's start-up lines
    process.terminate()
    status = processes.wait_while_progressing(process, [out])
    lines = [line for line in err.read_text().splitlines()[before:] if line.strip()]

    assert status == 143, f"exit {status}:\n{processes.output_of(process)}"
    assert len(lines) == 1, lines
    assert "resume" in lines[0] or "rerun" in lines[0] or "again" in lines[0], lines
    _finish(out, tmp_path / "rerun.log")
    _check_nothing_lost_or_torn(out)
