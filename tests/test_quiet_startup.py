"""Importing the package (and so starting any recipe) prints none of TensorFlow's C++ start-up
lines unless KERAS_LATENT_VERBOSE asks for them."""

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


def test_import_and_recipe_help_are_quiet():
    stderr = _stderr({}, "import keras_latent, keras, tensorflow as tf; tf.constant(1.0) + 1")
    assert not [line for line in stderr.splitlines() if any(n in line for n in NOISE)], stderr
    completed = subprocess.run([sys.executable, "recipes/mnist_classifier.py", "--help"],
                               capture_output=True, text=True, cwd=REPO, timeout=300,
                               env={k: v for k, v in os.environ.items() if k != "KERAS_LATENT_VERBOSE"})
    assert completed.returncode == 0 and "usage" in completed.stdout
    assert not [line for line in completed.stderr.splitlines() if any(n in line for n in NOISE)]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="oneDNN's notice is an x86 build's")
def test_verbose_shows_tensorflow_startup_lines():
    assert "oneDNN custom operations" in _stderr({"KERAS_LATENT_VERBOSE": "1"})
