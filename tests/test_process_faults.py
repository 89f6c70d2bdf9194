"""Faults from outside the process (issue 32): a full disk, SIGTERM, a second run into the same
folder, a dead worker in TF_CONFIG, and bad data or model paths. Each runs a recipe or
``keras-latent`` as a subprocess, as a user would, and checks the one line on stderr and the
exit status README ("Interrupted runs") documents."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from keras_latent import io
from tests.conftest import REPO

RECIPES = REPO / "recipes"
#: A run small enough for a few seconds of training on 2 cores.
SMALL = ["--limit", "300", "--quiet"]
#: Generous: a subprocess that imports TensorFlow on a loaded 2-core machine.
TIMEOUT = 600


def _env(**extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(RECIPES)]), **extra}
    env.pop("KERAS_LATENT_VERBOSE", None)
    return env


def _recipe(*argv, **kwargs):
    return subprocess.run([sys.executable, str(RECIPES / "mnist_classifier.py"), *argv],
                          capture_output=True, text=True, cwd=REPO, env=_env(),
                          timeout=TIMEOUT, **kwargs)


#: TensorFlow's C++ log lines ("E0000 00:00:...", "WARNING: All log messages before absl..."),
#: written to file descriptor 2 by the library whatever Python does; which ones depends on
#: the machine (e.g. "failed call to cuInit" where CUDA is installed but no GPU is).
_TF_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl)")


def _one_line(stderr: str) -> str:
    """The one line the command wrote on stderr, besides TensorFlow's own log lines."""
    lines = [line for line in stderr.splitlines() if line.strip() and not _TF_LOG.match(line)]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


# ------------------------------------------------------------------------ disk full


#: Runs ``run_recipe`` on a ``main`` that fails as a write on a full disk does, wrapped as Keras
#: wraps it (argv[1]: the errno name; argv[2]: a file in the run folder).
_FAILING_MAIN = textwrap.dedent(
    """
    import errno, sys
    from _plumbing import run_recipe

    def main(argv):
        try:
            raise OSError(getattr(errno, sys.argv[1]), "No space left", sys.argv[2])
        except OSError as error:
            raise ValueError("could not save the checkpoint") from error

    run_recipe(main)
    """
)


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT"])
def test_a_full_disk_or_quota_is_one_line_and_exit_2(tmp_path, code):
    target = tmp_path / "run" / "checkpoints" / "best.keras"
    completed = subprocess.run([sys.executable, "-c", _FAILING_MAIN, code, str(target)],
                               capture_output=True, text=True, env=_env(), timeout=TIMEOUT)
    assert completed.returncode == 2, completed.stderr
    line = _one_line(completed.stderr)
    assert str(target.parent) in line and "--output elsewhere" in line and "resume" in line


#: The recipe with the resume state's weights writer failing after the first epoch, as h5py
#: words a full disk (no errno; a half-written file left behind, as on a real full disk).
_DISK_FILLS = textwrap.dedent(
    """
    import sys
    import keras
    from _plumbing import run_recipe
    import mnist_classifier

    saved = []
    real_save_weights = keras.Model.save_weights

    def save_weights(self, filepath, *args, **kwargs):
        if saved:
            with open(filepath, "wb") as handle:
                handle.write(b"\\x89HDF\\r\\n")
            raise OSError("Unable to synchronously create file (file write failed: errno = 28, "
                          "error message = 'No space left on device')")
        saved.append(filepath)
        return real_save_weights(self, filepath, *args, **kwargs)

    keras.Model.save_weights = save_weights
    run_recipe(mnist_classifier.main, sys.argv[1:])
    """
)


def test_disk_full_during_a_recipe_is_one_line_then_a_rerun_resumes(data_dir, tmp_path):
    run = tmp_path / "run"
    argv = [*SMALL, "--epochs", "3", "--output", str(run), "--data-dir", str(data_dir)]
    completed = subprocess.run([sys.executable, "-c", _DISK_FILLS, *argv], capture_output=True,
                               text=True, cwd=REPO, env=_env(), timeout=TIMEOUT)
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "disk full" in _one_line(completed.stderr) and str(run) in completed.stderr
    assert not [p for p in run.rglob("*") if ".tmp." in p.name or p.name == ".lock"]
    rerun = _recipe(*argv)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text())["accuracy"]["test"] is not None


@pytest.fixture
def small_disk(tmp_path):
    """A real 12 MiB file system (tmpfs), where this user may mount one (root); else a skip."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(folder)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a 12 MiB tmpfs needs root")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)


def test_a_real_full_disk_is_one_line_not_a_crash(data_dir, small_disk):
    # The classifier's checkpoint is 6.7 MB: the disk fills while the resume state is saved
    # after the first epoch. h5py then printed tracebacks and the process crashed (exit 139).
    run = small_disk / "run"
    completed = _recipe(*SMALL, "--epochs", "3", "--output", str(run), "--data-dir",
                        str(data_dir))
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert f"disk full while writing to {run}" in _one_line(completed.stderr)
    assert not [p for p in run.rglob("*") if ".tmp." in p.name]


# ------------------------------------------------------------------------ SIGTERM


def _wait_for_an_epoch(process, log, timeout=TIMEOUT):
    """Until ``log`` (the CSV training log) holds a finished epoch; fails if the run ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.is_file() and len(log.read_text().splitlines()) >= 2:
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.2)
    pytest.fail(f"no epoch finished in {timeout} s")


def test_sigterm_saves_says_one_line_exits_143_and_the_rerun_resumes(data_dir, tmp_path):
    run = tmp_path / "run"
    argv = [*SMALL, "--epochs", "20", "--output", str(run), "--data-dir", str(data_dir)]
    process = subprocess.Popen([sys.executable, str(RECIPES / "mnist_classifier.py"), *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, env=_env())
    try:
        _wait_for_an_epoch(process, run / "checkpoints" / "training_log.csv")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr[-3000:]
    line = _one_line(stderr)
    assert "SIGTERM" in line and "run the same command again to resume" in line
    assert list((run / "checkpoints" / "backup").iterdir())  # the finished epochs' state
    rerun = _recipe(*argv)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (run / "metrics.json").is_file()
    log = (run / "checkpoints" / "training_log.csv").read_text().splitlines()[1:]
    assert [int(row.split(",")[0]) for row in log] == list(range(20))  # resumed, not redone


# ------------------------------------------------------------------------ a second run


def test_a_second_run_into_a_held_folder_is_refused_at_once(tmp_path):
    run = tmp_path / "run"
    with io.lock_folder(run):
        completed = _recipe(*SMALL, "--output", str(run))
    assert completed.returncode == 2, completed.stderr[-3000:]
    line = _one_line(completed.stderr)
    assert str(run) in line and f"process {os.getpid()}" in line and "--output" in line
    assert "writing to" not in completed.stdout  # refused before loading data or TensorFlow


def test_keras_latent_refuses_an_output_folder_in_use(tmp_path):
    model = tmp_path / "m.keras"
    model.write_bytes(b"")  # never read: the folder check comes first
    report = tmp_path / "report"
    with io.lock_folder(report):
        completed = subprocess.run(
            [sys.executable, "-m", "keras_latent", "compare", str(tmp_path), str(tmp_path),
             "--output", str(report)], capture_output=True, text=True, cwd=REPO, env=_env(),
            timeout=TIMEOUT)
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert f"process {os.getpid()}" in _one_line(completed.stderr)


# ------------------------------------------------------------------------ a dead worker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.multi_worker
def test_a_dead_worker_in_tf_config_is_named_and_ends_the_run(tmp_path):
    me, dead = f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"
    tf_config = {"cluster": {"worker": [me, dead]}, "task": {"type": "worker", "index": 0}}
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, str(RECIPES / "mnist_classifier.py"), *SMALL, "--strategy",
         "multi_worker", "--output", str(tmp_path / "run")],
        capture_output=True, text=True, cwd=REPO, timeout=TIMEOUT,
        env=_env(TF_CONFIG=json.dumps(tf_config), KERAS_LATENT_WORKER_TIMEOUT="5"))
    assert completed.returncode == -signal.SIGKILL, completed.stderr[-3000:]  # 137 in a shell
    assert dead in completed.stdout and "waiting" in completed.stdout
    line = _one_line(completed.stderr)
    assert dead in line and "KERAS_LATENT_WORKER_TIMEOUT" in line
    assert time.monotonic() - started < 300


# ------------------------------------------------------------------------ bad paths, at once


#: Runs a command in a child Python and prints its exit status and whether TensorFlow loaded.
_PARSE_ONLY = textwrap.dedent(
    """
    import sys
    {setup}
    try:
        status = {call}
    except SystemExit as exit_:
        status = exit_.code
    print("STATUS", status, "tensorflow" in sys.modules)
    """
)


def _fails_before_tensorflow(setup, call):
    """The one line on stderr of a command that must exit 2 without loading TensorFlow."""
    completed = subprocess.run(
        [sys.executable, "-c", _PARSE_ONLY.format(setup=setup, call=call)], capture_output=True,
        text=True, cwd=REPO, env=_env(), timeout=TIMEOUT)
    assert completed.stdout.split()[-3:] == ["STATUS", "2", "False"], completed.stderr[-3000:]
    return _one_line(completed.stderr)


def _data_folders(tmp_path):
    cifar_only = tmp_path / "cifar_only"
    cifar_only.mkdir()
    (cifar_only / "cifar10.npz").write_bytes(b"never read")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"missing": (tmp_path / "missing", "does not exist"),
            "a file": (a_file, "is a file, not a folder"),
            "no mnist": (cifar_only, "holds no mnist.npz (it holds cifar10.npz)")}


@pytest.mark.parametrize("case", ["missing", "a file", "no mnist"])
def test_a_bad_data_dir_fails_before_tensorflow_loads(tmp_path, case):
    folder, words = _data_folders(tmp_path)[case]
    output = tmp_path / "run"
    line = _fails_before_tensorflow(
        "import mnist_classifier",
        f"mnist_classifier.main(['--data-dir', {str(folder)!r}, '--output', {str(output)!r}])")
    assert "--data-dir" in line and str(folder) in line and words in line
    assert not output.exists()
    model = tmp_path / "x.keras"
    model.write_bytes(b"never read")
    line = _fails_before_tensorflow(
        "from keras_latent.cli import main",
        f"main(['evaluate', {str(model)!r}, '--dataset', 'mnist', '--data-dir', {str(folder)!r}])")
    assert "--data-dir" in line and words in line


def test_a_bad_model_path_fails_before_tensorflow_loads_naming_real_files(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "autoencoder.keras").write_bytes(b"never read")
    (run / "probe.keras").write_bytes(b"never read")
    (tmp_path / "weights.h5").write_bytes(b"never read")
    expected = {tmp_path / "missing.keras": "autoencoder.keras, classifier.keras",
                run: "it holds autoencoder.keras, probe.keras",
                tmp_path / "weights.h5": "not a .keras model file"}
    for path, words in expected.items():
        line = _fails_before_tensorflow(
            "from keras_latent.cli import main",
            f"main(['evaluate', {str(path)!r}, '--dataset', 'mnist'])")
        assert str(path) in line and words in line and "model.keras" not in line, line


def test_the_data_folder_check_knows_what_the_loader_looks_for():
    from keras_latent.data import DATASETS
    from keras_latent.data.datasets import _IDX_FILES
    from keras_latent.flags import DATA_SOURCES

    assert set(DATA_SOURCES) == set(DATASETS)
    for name, (file_name, folder_names, official_file) in DATA_SOURCES.items():
        spec = DATASETS[name]
        assert (file_name, folder_names) == (spec.file_name, spec.folder_names)
        assert official_file == ("data_batch_1" if spec.folder_format == "cifar_batches"
                                 else _IDX_FILES[0])
