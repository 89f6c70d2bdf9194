"""What produced a result: command, versions, precision, device, seed, timings, commit.

A ``metrics.json`` without this cannot be reproduced or compared fairly (a bfloat16 CPU run
and a float32 GPU run give different numbers and very different times).
"""

from __future__ import annotations

import functools
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path


def run_metadata(*, seed=None, precision=None, phases=None) -> dict:
    """A JSON-ready dict describing this process and machine.

    Args:
        seed: the run's seed.
        precision: the Keras dtype policy name the run trained under.
        phases: ``{phase name: wall-clock seconds}`` (e.g. training, probe, evaluation).
    """
    import keras

    import keras_latent

    return {
        "command": " ".join(shlex.quote(arg) for arg in [Path(sys.executable).name, *sys.argv]),
        "versions": {"keras_latent": keras_latent.__version__, "keras": keras.__version__,
                     **_backend_versions(), "python": platform.python_version()},
        "backend": keras.backend.backend(),
        "precision": precision,
        "device": device_description(),
        "cpu_cores": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "seed": seed,
        "phases_s": {name: round(float(value), 1) for name, value in (phases or {}).items()},
        "git_commit": git_commit(),
    }


def training_metadata(config, phases=None) -> dict:
    """``run_metadata`` of a run trained with ``config`` (a ``TrainingConfig``; None gives no
    seed or precision): the one place the experiments and study recipes take it from."""
    return run_metadata(seed=getattr(config, "seed", None),
                        precision=getattr(config, "dtype_policy", None), phases=phases)


def device_description() -> str:
    """The GPU names when the backend sees GPUs, else the CPU model."""
    from keras_latent import backend

    names = [gpu_name for gpu_name, _ in backend.gpus()]
    return ", ".join(names) if names else f"CPU: {cpu_model()}"


def device_line() -> str:
    """The line a run starts with about what runs it: the Keras backend and the device."""
    import keras

    return f"backend: {keras.backend.backend()} on {device_description()}"


@functools.cache
def git_commit() -> str | None:
    """The checkout's commit (with "+dirty" for uncommitted changes), or None outside one.

    Read once per process: a recipe's ``setup`` asks at the start of a run, so a run of an
    hour reports the code it started with, not a commit made while it trained."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5)
        if commit.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _backend_versions() -> dict:
    """The versions of the backend packages this process loaded (TensorFlow also feeds tf.data
    to the other backends); one that was not loaded played no part."""
    return {package: getattr(sys.modules[package], "__version__", None)
            for package in ("tensorflow", "jax", "torch") if package in sys.modules}


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
