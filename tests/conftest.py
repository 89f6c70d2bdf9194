"""Shared fixtures: the offline dataset folder and small, seeded slices of real data."""

import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# A checkout normally sits beside ../shared (as in CI); use it when the env var is not set.
_DEFAULT_DATA_DIR = REPO.parent / "shared" / "datasets"
if "KERAS_LATENT_DATA_DIR" not in os.environ and _DEFAULT_DATA_DIR.is_dir():
    os.environ["KERAS_LATENT_DATA_DIR"] = str(_DEFAULT_DATA_DIR)


@pytest.fixture(scope="session")
def data_dir():
    """The configured offline data folder; tests that need it skip when there is none."""
    value = os.environ.get("KERAS_LATENT_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("no data folder: set KERAS_LATENT_DATA_DIR to a folder with mnist.npz / cifar10.npz")
    return Path(value)
