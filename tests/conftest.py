"""Shared fixtures: the offline dataset folder and small, seeded slices of real data.

Tests that need the data take the ``data_dir`` fixture. Without a data folder a developer's run
skips them, saying why in one line; CI (``CI`` set, or ``KERAS_LATENT_REQUIRE_DATA=1``, which
``.ci/run`` exports) fails them instead, so that a suite which ran none of its end-to-end tests
cannot pass.
"""

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

#: The files the data-driven tests read.
DATA_FILES = ("mnist.npz", "cifar10.npz")


def data_required() -> bool:
    """Whether a missing data folder fails the tests that need it (CI) instead of skipping."""
    def on(name):
        return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")

    return on("KERAS_LATENT_REQUIRE_DATA") or on("CI")


def data_problem():
    """What is wrong with the configured data folder, in one line; None when it is usable."""
    value = os.environ.get("KERAS_LATENT_DATA_DIR")
    if not value:
        return (f"no data folder: KERAS_LATENT_DATA_DIR is not set and {_DEFAULT_DATA_DIR} "
                f"does not exist (it needs {' and '.join(DATA_FILES)})")
    if not Path(value).is_dir():
        return f"no data folder: KERAS_LATENT_DATA_DIR={value} is not a folder"
    # Most of these tests read MNIST; a developer's folder may lack CIFAR-10 (the few tests
    # that read it then skip themselves), CI's must hold both.
    needed = DATA_FILES if data_required() else DATA_FILES[:1]
    missing = [name for name in needed if not (Path(value) / name).is_file()]
    if missing:
        return f"the data folder {value} lacks {' and '.join(missing)}"
    return None


def pytest_report_header(config):
    problem = data_problem()
    if problem is None:
        return f"data: {os.environ['KERAS_LATENT_DATA_DIR']}"
    if data_required():
        return f"data: {problem}; the tests that need it FAIL (KERAS_LATENT_REQUIRE_DATA / CI)"
    return f"data: {problem}; the tests that need it are skipped"


def pytest_collection_modifyitems(session, config, items):
    """Under CI's rule, stop the whole session at once, in one line, when tests that need the
    data were collected and the data is not there (rather than one error per test)."""
    problem = data_problem()
    if problem is None or not data_required():
        return
    needing = sum("data_dir" in getattr(item, "fixturenames", ()) for item in items)
    if needing:
        pytest.exit(f"{problem}: {needing} collected tests need it "
                    "(KERAS_LATENT_REQUIRE_DATA / CI: data is required)", returncode=1)


@pytest.fixture(scope="session")
def data_dir():
    """The configured offline data folder. Missing, the tests that need it skip; under
    ``KERAS_LATENT_REQUIRE_DATA=1`` or ``CI`` they fail, with the same one line."""
    problem = data_problem()
    if problem is not None:
        if data_required():
            pytest.fail(f"{problem} (KERAS_LATENT_REQUIRE_DATA / CI: data is required)",
                        pytrace=False)
        pytest.skip(f"{problem}; set KERAS_LATENT_DATA_DIR to a folder with "
                    f"{' / '.join(DATA_FILES)} to run them")
    return Path(os.environ["KERAS_LATENT_DATA_DIR"])
