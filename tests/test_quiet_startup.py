"""A command (recipe, tuner, ``keras-latent``) starts TensorFlow without its C++ start-up lines
unless KERAS_LATENT_VERBOSE asks for them, and parses its flags before Keras loads."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOISE = ("absl::InitializeLog", "oneDNN custom operations", "cuda_platform", "cudart_stub",
         "cpu_feature_guard")


def _stderr(extra_env, code="import keras_latent"):
    env = {key: value for key, value in os.environ.items()
           if key not in ("KERAS_LATENT_VERBOSE", "TF_CPP_MIN_LOG_LEVEL")}
    env.update(extra_env)
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=REPO, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stderr


_STARTED = ("from keras_latent.flags import quiet_startup; quiet_startup(); "
            "import keras, tensorflow as tf; tf.constant(1.0) + 1")


def test_command_startup_and_recipe_help_are_quiet():
    stderr = _stderr({}, _STARTED)
    assert not [line for line in stderr.splitlines() if any(n in line for n in NOISE)], stderr
    completed = subprocess.run([sys.executable, "recipes/mnist_classifier.py", "--help"],
                               capture_output=True, text=True, cwd=REPO, timeout=300,
                               env={k: v for k, v in os.environ.items() if k != "KERAS_LATENT_VERBOSE"})
    assert completed.returncode == 0 and "usage" in completed.stdout
    assert not [line for line in completed.stderr.splitlines() if any(n in line for n in NOISE)]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the start-up lines are an x86 build's")
def test_verbose_shows_tensorflow_startup_lines():
    # Which lines depend on the machine: oneDNN's notice only where TensorFlow turns oneDNN on
    # (AVX-512 VNNI / bf16 CPUs); the CUDA-stub lines where no GPU driver is found.
    stderr = _stderr({"KERAS_LATENT_VERBOSE": "1"}, _STARTED)
    assert any(noise in stderr for noise in NOISE), stderr


# Each command answers --help and a bad flag without loading TensorFlow (seconds to start):
# the printed line says whether tensorflow / keras were imported.
_PARSE_ONLY = """
import sys
sys.path[:0] = ["recipes", "."]
{setup}
try:
    status = {call}
except SystemExit as exit_:
    status = exit_.code
print("STATUS", status, "tensorflow" in sys.modules, "keras" in sys.modules)
"""


@pytest.mark.parametrize("setup, call, exit_status", [
    ("import cifar_autoencoder", "cifar_autoencoder.main(['--help'])", "0"),
    ("import mnist_classifier", "mnist_classifier.main(['--epochs', '0'])", "2"),
    ("import compare", "compare.main(['--limit', '-5'])", "2"),
    ("from keras_latent.cli import main", "main(['evaluate', '--help'])", "0"),
    ("from keras_latent.cli import main", "main(['evaluate', 'm.keras', '--limit', '0'])", "2"),
    ("from tuning import search", "search.main(['--task', 'ae', '--dataset', 'mnist'])", "2"),
], ids=["recipe-help", "recipe-bad-flag", "compare-bad-flag", "cli-help", "cli-bad-flag",
        "tuner-bad-flag"])
def test_flags_are_parsed_before_tensorflow_loads(setup, call, exit_status):
    completed = subprocess.run(
        [sys.executable, "-c", _PARSE_ONLY.format(setup=setup, call=call)],
        capture_output=True, text=True, cwd=REPO, timeout=120)
    status = completed.stdout.strip().splitlines()[-1].split()
    assert status[:2] == ["STATUS", exit_status], completed.stdout + completed.stderr
    if exit_status == "2":  # README: a bad flag is one line on stderr
        assert completed.stderr.count("\n") == 1, completed.stderr
    assert status[2:] == ["False", "False"], "TensorFlow or Keras was imported to parse the flags"


def test_importing_the_package_after_keras_registers_its_classes_with_keras():
    code = ("import keras, keras_latent; "
            "assert keras.saving.get_registered_object('keras_latent>Autoencoder'); "
            "assert keras.saving.get_registered_object('keras_latent>SimCLR'); print('OK')")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               cwd=REPO, timeout=300)
    assert completed.stdout.strip() == "OK", completed.stderr[-2000:]
