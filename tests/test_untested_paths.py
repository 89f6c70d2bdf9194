"""Paths no other test ran (issue 32): CI's data check, ``--strategy mirrored`` by name, the
``keras-latent`` console script, ``compare.py --dataset cifar10``, loading Fashion-MNIST, and a
multi-worker run losing a worker. Each is small: a slice of data, one epoch.
"""

import configparser
import importlib
import json
import os
import socket
import stat
import sys
import sysconfig
import textwrap
import time
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from tests import processes
from tests.conftest import REPO

RECIPES = REPO / "recipes"


def _stderr_lines(text: str) -> list:
    """The lines of ``text`` that are not TensorFlow's / absl's start-up chatter."""
    noise = ("WARNING: All log messages before absl", "I0000 ", "E0000 ", "W0000 ")
    return [line for line in text.splitlines() if line.strip() and not line.startswith(noise)]


# ------------------------------------------------ tests/processes.py: waiting on progress


def test_waiting_goes_on_while_a_child_progresses_and_stops_a_stalled_one(tmp_path):
    # A line every 0.2 s for 1.6 s: longer than the stall limit, never silent that long.
    busy = processes.start([sys.executable, "-c", "import time\nfor i in range(8):\n"
                            "    print(i, flush=True); time.sleep(0.2)"], tmp_path / "busy.log")
    assert processes.wait_while_progressing(busy, stall_seconds=1.0) == 0
    # One line, then silence: stopped after the stall, its Python stack in its log.
    stuck = processes.start([sys.executable, "-c", "import time\nprint('started', flush=True)"
                             "\ntime.sleep(120)"], tmp_path / "stuck.log")
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="no progress for 1 s"):
        processes.wait_while_progressing(stuck, stall_seconds=1.0)
    assert stuck.poll() is not None and time.monotonic() - started < 30
    assert "Fatal Python error: Aborted" in processes.output_of(stuck)
    assert "time.sleep" in processes.output_of(stuck) or 'File "<string>"' in \
        processes.output_of(stuck)


# ------------------------------------------------------- CI fails when its data is missing

NEEDS_DATA = textwrap.dedent(
    """
    def test_reads_the_data(data_dir):
        assert (data_dir / "mnist.npz").is_file()
    """
)


def _pytest_with_data_dir(tmp_path, data_dir, **env):
    """A pytest run of one test that takes ``data_dir``, with this suite's conftest as a plugin
    and ``KERAS_LATENT_DATA_DIR=data_dir``; CI's own variables are cleared unless given."""
    (tmp_path / "test_needs_data.py").write_text(NEEDS_DATA)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    variables = {"KERAS_LATENT_DATA_DIR": data_dir, "KERAS_LATENT_REQUIRE_DATA": None,
                 "CI": None, **env}
    process = processes.start(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-c", tmp_path / "pytest.ini",
         "-rfEs", "-p", "no:cacheprovider", tmp_path / "test_needs_data.py"],
        tmp_path / f"pytest{len(list(tmp_path.glob('pytest*.log')))}.log",
        env=processes.child_env(**variables))
    return processes.wait_while_progressing(process), processes.output_of(process, 20000)


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_missing_data_fails_under_require_and_in_ci(tmp_path, folder):
    data = tmp_path / folder
    if folder == "empty":
        data.mkdir()
    for variables in ({"KERAS_LATENT_REQUIRE_DATA": "1"}, {"CI": "true"}):
        status, output = _pytest_with_data_dir(tmp_path, data, **variables)
        assert status == 1, output
        failures = [line for line in output.splitlines() if "data is required" in line]
        assert len(failures) == 1 and "1 collected tests need it" in failures[0], output
        assert ("lacks mnist.npz and cifar10.npz" if folder == "empty" else "is not a folder") \
            in failures[0]
        assert "data: " in output and "FAIL" in output  # the session header says it up front


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_missing_data_skips_for_a_developer_saying_why(tmp_path, folder):
    data = tmp_path / folder
    if folder == "empty":
        data.mkdir()
    status, output = _pytest_with_data_dir(tmp_path, data)
    assert status == 0, output
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED ")]
    assert len(skips) == 1 and "KERAS_LATENT_DATA_DIR" in skips[0], output
    assert "1 skipped" in output
    assert "the tests that need it are skipped" in output  # the header's one line


def _fake_ci_checkout(tmp_path):
    """A copy of ``.ci/run`` in a folder of its own, with a ``python`` on PATH that records its
    arguments and CI's variables instead of installing anything or running the suite."""
    checkout = tmp_path / "clone"
    (checkout / ".ci").mkdir(parents=True)
    (checkout / ".ci" / "run").write_text((REPO / ".ci" / "run").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "python"
    fake.write_text('#!/bin/sh\necho "python $* REQUIRE=$KERAS_LATENT_REQUIRE_DATA" '
                    f'>> "{tmp_path / "calls.txt"}"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return checkout, bin_dir


def test_ci_run_stops_before_pytest_when_the_datasets_are_missing(tmp_path):
    checkout, bin_dir = _fake_ci_checkout(tmp_path)
    data = tmp_path / "shared" / "datasets"  # ../shared/datasets beside the clone
    data.mkdir(parents=True)
    (data / "mnist.npz").write_bytes(b"")
    env = processes.child_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                              KERAS_LATENT_DATA_DIR=None)
    process = processes.start(["bash", checkout / ".ci" / "run"], tmp_path / "out.log",
                              stderr_path=tmp_path / "err.log", env=env, cwd=tmp_path)
    assert processes.wait_while_progressing(process) == 1
    errors = (tmp_path / "err.log").read_text().splitlines()
    assert len(errors) == 1 and "cifar10.npz is missing" in errors[0], errors
    assert not (tmp_path / "calls.txt").exists()  # neither pip nor pytest ran

    (data / "cifar10.npz").write_bytes(b"")
    process = processes.start(["bash", checkout / ".ci" / "run"], tmp_path / "out2.log",
                              env=env, cwd=tmp_path)
    assert processes.wait_while_progressing(process) == 0, processes.output_of(process)
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert calls == ["python -m pip install -e .[test] REQUIRE=1", "python -m pytest REQUIRE=1"]


# ------------------------------------------------------------- --strategy mirrored by name

MIRRORED_DRIVER = textwrap.dedent(
    """
    import runpy, sys
    import tensorflow as tf
    made = []
    original = tf.distribute.MirroredStrategy.__init__
    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        made.append(self.num_replicas_in_sync)
    tf.distribute.MirroredStrategy.__init__ = record
    sys.argv = sys.argv[1:]
    sys.path.insert(0, "recipes")
    runpy.run_path(sys.argv[0], run_name="__main__")
    print("MirroredStrategy replicas:", made)
    """
)


def test_strategy_mirrored_by_name_trains_a_recipe_on_one_cpu(tmp_path, data_dir):
    out = tmp_path / "run"
    process = processes.start(
        [sys.executable, "-c", MIRRORED_DRIVER, "recipes/classifier.py", "--strategy",
         "mirrored", "--limit", "128", "--epochs", "1", "--batch-size", "32", "--quick",
         "--quiet", "--output", out],
        tmp_path / "run.log", env=processes.child_env(CUDA_VISIBLE_DEVICES=""))
    assert processes.wait_while_progressing(process, [out]) == 0, processes.output_of(process)
    assert "MirroredStrategy replicas: [1]" in processes.output_of(process)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["accuracy"]["test"] <= 1.0
    assert (out / "classifier.keras").is_file()


# ----------------------------------------------------------- the keras-latent console script


def _setup_cfg_entry_point() -> str:
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    scripts = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    names = dict(line.replace(" ", "").split("=", 1) for line in scripts)
    return names["keras-latent"]


def test_the_console_script_entry_point_resolves():
    target = _setup_cfg_entry_point()
    module, _, function = target.partition(":")
    assert callable(getattr(importlib.import_module(module), function))
    installed = entry_points(group="console_scripts", name="keras-latent")
    if not installed:
        pytest.skip("keras-latent is not installed (pip install -e .): no entry point to check")
    assert [entry.value for entry in installed] == [target]


@pytest.fixture(scope="module")
def console_script():
    script = Path(sysconfig.get_path("scripts")) / "keras-latent"
    if not script.is_file():
        pytest.skip(f"no {script}: install the package (pip install -e .) to test its script")
    return script


def test_the_console_script_answers_help(console_script, tmp_path):
    process = processes.start([console_script, "--help"], tmp_path / "help.log")
    assert processes.wait_while_progressing(process) == 0, processes.output_of(process)
    text = processes.output_of(process)
    assert text.startswith("usage: keras-latent") and "evaluate" in text and "compare" in text


def test_the_console_script_evaluates_a_model(console_script, tmp_path, data_dir):
    import keras

    from keras_latent.models import build_autoencoder, save_model_atomic

    keras.utils.set_random_seed(0)
    model = build_autoencoder((28, 28, 1), 4, kind="mlp", widths=[16])
    save_model_atomic(model, tmp_path / "tiny.keras")
    out = tmp_path / "eval"
    process = processes.start(
        [console_script, "evaluate", tmp_path / "tiny.keras", "--dataset", "mnist",
         "--data-dir", data_dir, "--limit", "60", "--tsne-sample", "30", "--output", out],
        tmp_path / "eval.log")
    assert processes.wait_while_progressing(process, [out]) == 0, processes.output_of(process)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_examples"]["test"] == 60 and (out / "report.md").is_file()


# ------------------------------------------------------------ compare.py on CIFAR-10


def test_compare_help_names_cifar10(tmp_path):
    process = processes.start([sys.executable, "recipes/compare.py", "--help"],
                              tmp_path / "help.log")
    assert processes.wait_while_progressing(process) == 0, processes.output_of(process)
    text = processes.output_of(process)
    assert "cifar10" in text and "--seeds" in text


def test_compare_runs_on_cifar10(tmp_path, data_dir):
    out = tmp_path / "compare"
    process = processes.start(
        [sys.executable, "recipes/compare.py", "--dataset", "cifar10", "--output", out,
         "--limit", "64", "--epochs", "1", "--batch-size", "64", "--quick", "--quiet"],
        tmp_path / "compare.log")
    assert processes.wait_while_progressing(process, [out]) == 0, processes.output_of(process)
    root = out / "cifar10"
    for method in ("autoencoder", "classifier", "simclr", "random_encoder"):
        metrics = json.loads((root / method / "metrics.json").read_text())
        assert metrics["dataset"] == "cifar10" and metrics["num_examples"]["test"] == 64, method
    table = (root / "comparison.md").read_text()
    assert "SimCLR + frozen probe" in table and "random encoder + frozen probe" in table
    assert (root / "tsne_grid.png").stat().st_size > 0


# ------------------------------------------------------------------ Fashion-MNIST


def _synthetic_fashion_mnist(folder: Path, train=120, test=40):
    """A fashion_mnist.npz laid out as Keras' loader returns it: uint8 28x28 images, labels
    0..9."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / "fashion_mnist.npz",
        x_train=rng.integers(0, 256, (train, 28, 28), dtype=np.uint8),
        y_train=np.arange(train, dtype=np.uint8) % 10,
        x_test=rng.integers(0, 256, (test, 28, 28), dtype=np.uint8),
        y_test=np.arange(test, dtype=np.uint8) % 10,
    )


def test_fashion_mnist_loads_from_its_npz(tmp_path):
    from keras_latent.data import load_dataset

    _synthetic_fashion_mnist(tmp_path)
    splits = load_dataset("fashion_mnist", data_dir=tmp_path, validation_fraction=0.25, seed=0)
    assert splits.name == "fashion_mnist" and splits.image_shape == (28, 28, 1)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 30, 40)
    assert splits.class_names[0] == "T-shirt/top" and splits.num_classes == 10
    assert splits.train.images.dtype == np.uint8 and splits.train.labels.dtype == np.int64


def test_fashion_mnist_without_its_file_is_one_clear_line(tmp_path):
    from keras_latent.data import DatasetError, load_dataset

    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError) as error:
        load_dataset("fashion_mnist", data_dir=tmp_path / "empty")
    assert "\n" not in str(error.value) and "fashion_mnist.npz" in str(error.value)

    # ... and so from a recipe: one line on stderr, exit status 2, no traceback.
    process = processes.start(
        [sys.executable, "recipes/autoencoder.py", "--dataset", "fashion_mnist", "--data-dir",
         tmp_path / "empty", "--quick", "--output", tmp_path / "run"],
        tmp_path / "out.log", stderr_path=tmp_path / "err.log")
    assert processes.wait_while_progressing(process) == 2, processes.output_of(process)
    lines = _stderr_lines((tmp_path / "err.log").read_text())
    # The data folder is checked with the flags, before TensorFlow loads.
    assert len(lines) == 1 and "error: argument --data-dir: " in lines[0], lines
    assert "fashion_mnist.npz" in lines[0]


# ------------------------------------------------- a worker dies: the others stop

#: How long the survivor may take to notice and exit once its peer is gone: the watchdog's
#: limit (KERAS_LATENT_WORKER_TIMEOUT) plus the time to write its state and exit.
WORKER_TIMEOUT = 20
SURVIVOR_BOUND = 120


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.multi_worker
def test_when_a_worker_dies_the_other_stops(tmp_path, data_dir):
    """README: 'If a worker dies, the others stop with an error'. Two workers train a recipe
    together; worker 1 is killed once both have finished an epoch; worker 0 must exit non-zero
    within ``SURVIVOR_BOUND`` seconds instead of waiting forever, with one line on stderr."""
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    out = tmp_path / "run"
    workers = []
    for index in range(2):
        tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = processes.child_env(TF_CONFIG=json.dumps(tf_config), CUDA_VISIBLE_DEVICES="",
                                  KERAS_LATENT_WORKER_TIMEOUT=WORKER_TIMEOUT)
        workers.append(processes.start(
            [sys.executable, "recipes/autoencoder.py", "--strategy", "multi_worker",
             "--limit", "256", "--epochs", "50", "--batch-size", "32", "--quiet",
             "--output", out],
            tmp_path / f"worker{index}.log", stderr_path=tmp_path / f"worker{index}.err",
            env=env))
    chief, other = workers
    try:
        # Both train: the chief has saved an epoch's resume state.
        state = out / "checkpoints" / "backup" / "training_metadata.json"
        assert processes.wait_until(state.is_file, workers, [tmp_path]), \
            [processes.output_of(w) for w in workers]
        before = len((tmp_path / "worker0.err").read_text().splitlines())
        processes.kill(other)
        killed_at = time.monotonic()
        while chief.poll() is None and time.monotonic() - killed_at < SURVIVOR_BOUND:
            time.sleep(0.5)
        survived, exited = time.monotonic() - killed_at, chief.poll()
    finally:
        processes.stop(workers)
    assert exited not in (None, 0), (
        f"worker 0 still ran {survived:.0f} s after worker 1 died:\n{processes.output_of(chief)}")
    lines = _stderr_lines("\n".join(
        (tmp_path / "worker0.err").read_text().splitlines()[before:]))
    # TensorFlow's heartbeat aborts the collective 8-12 s after the kill (UnavailableError)
    # and logs it from C++ (lines we cannot hold back); the recipe's own ending is one line,
    # with no Python traceback.
    assert lines and "another worker of this run stopped" in lines[-1], lines
    assert not any(line.startswith("Traceback") for line in lines), lines
