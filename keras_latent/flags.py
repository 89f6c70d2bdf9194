"""What every command (the recipes, the tuner and ``keras-latent``) does before Keras loads:
the parser whose bad-flag error is one line, the argparse types (each names the flag and the
fix), the ``--strategy`` and ``--backend`` choices, choosing the backend and starting TensorFlow
quietly. The recipes' own parser and
ending live in ``recipes/_plumbing.py``; ``RunError`` lives in ``keras_latent/errors.py``.

Standard library only, so a command parses its flags, and answers ``--help`` or a bad flag,
before Keras (and TensorFlow, seconds to start) is loaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
from pathlib import Path

from keras_latent.errors import RunError

#: ``--strategy`` choices (here, not beside ``tf.distribute``, so that flags parse without
#: importing TensorFlow).
STRATEGIES = ("mirrored", "multi_worker")

#: ``--backend`` choices: Keras 3's backends.
BACKENDS = ("tensorflow", "jax", "torch")


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose error is one line on stderr, naming the flag and pointing at
    ``--help``, with exit status 2 (argparse prints its usage lines first, which buries the
    problem). Abbreviations are off: ``--epoch 3`` is an error, not a silent ``--epochs 3``.
    Sub-command parsers (``add_subparsers``) are of this class too."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} "
                     f"(try: {self.prog} --help)\n")


#: ``--precision`` choices; "auto" is ``paradigms.precision.auto_precision``'s pick.
PRECISIONS = ("auto", "float32", "bfloat16", "float16")


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each flag's default, except ``None`` (a flag that is off unless given,
    whose help says what happens then)."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


def add_device_flags(parser, strategies=STRATEGIES, strategy_help=None) -> None:
    """The flags about where and how a command computes, the same on every entry point:
    ``--backend``, ``--precision`` and ``--strategy`` (``strategies``: the ones it supports)."""
    add_backend_flag(parser)
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="'auto': bfloat16 on CPUs with avx512_bf16/amx_bf16 and on Ampere+ "
                             "GPUs, float16 on older GPUs, else float32")
    parser.add_argument("--strategy", choices=strategies, default=None,
                        help=strategy_help or "'mirrored': data parallel over this machine's "
                             "GPUs (tf.distribute, or Keras' DataParallel on JAX); "
                             "'multi_worker' (TensorFlow): over the machines TF_CONFIG names "
                             "(README: 'Training on several machines'); --batch-size is the "
                             "global batch")


def add_backend_flag(parser) -> None:
    """``--backend``: which Keras backend runs the command (default: Keras' own choice)."""
    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras backend (default: KERAS_BACKEND or ~/.keras/keras.json, "
                             "else tensorflow)")


def choose_backend(backend: str | None) -> str:
    """Run Keras on ``backend`` (None: Keras' own choice), before Keras is imported; returns
    the backend Keras will run.

    Raises ``RunError`` when Keras already runs another backend in this process, or when the
    backend's package is not installed (naming what to install)."""
    if "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if backend is not None and current != backend:
            raise RunError(f"--backend {backend}: Keras is already running on {current} in this "
                           f"process; set KERAS_BACKEND={backend} before importing Keras")
        return current
    chosen = backend or keras_backend_setting()
    if backend is None and not os.environ.get("KERAS_BACKEND") and not _installed(chosen):
        # Keras' default (or a keras.json Keras wrote itself) names a backend that is not
        # here: run on one that is, e.g. JAX on a GPU machine without TensorFlow.
        chosen = next((name for name in BACKENDS if _installed(name)), chosen)
        backend = chosen if _installed(chosen) else None
    if chosen in BACKENDS and not _installed(chosen):
        how = "--backend" if backend else "Keras' backend setting (KERAS_BACKEND or keras.json)"
        raise RunError(f"{how} is {chosen}, but the {chosen!r} package is not installed: pip "
                       f"install \"keras-latent[{chosen}]\", or pick another of "
                       f"{', '.join(BACKENDS)} with --backend")
    if backend is not None:
        os.environ["KERAS_BACKEND"] = backend
    return chosen


def keras_backend_setting() -> str:
    """The backend Keras will pick when imported: ``KERAS_BACKEND``, else the ``"backend"`` of
    ``$KERAS_HOME/keras.json`` (``~/.keras``), else tensorflow (Keras' default)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return str(json.load(handle).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def _installed(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):  # blocked with sys.modules[package] = None
        return False


def quiet_startup() -> None:
    """Start TensorFlow, when this run will use it, without its C++ start-up lines, and with
    oneDNN's kernels on.

    They (oneDNN notice, CUDA probing, "All log messages before absl::InitializeLog()") are
    written to file descriptor 2 before any log level applies; ``KERAS_LATENT_VERBOSE=1``
    shows them. Called by the commands, not by a library import."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # oneDNN's kernels: TensorFlow turns them on only on CPUs with AVX-512 VNNI / bf16; on an
    # AVX2 CPU they ran the main job 1.35x faster, accuracy within noise (docs/PERFORMANCE.md).
    # A TF_ENABLE_ONEDNN_OPTS the user set is kept.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if (os.environ.get("KERAS_LATENT_VERBOSE") or "tensorflow" in sys.modules
            or not _installed("tensorflow")):
        return
    with _stderr_muted():
        import tensorflow as tf

        try:
            tf.config.list_physical_devices("GPU")  # prints the CUDA probing lines, muted
        except Exception:  # noqa: BLE001 - a broken install fails visibly on first use
            pass
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


class _stderr_muted:
    """File descriptor 2 sent to /dev/null for the block."""

    def __enter__(self):
        self.saved = None
        try:
            self.saved, self.devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        except OSError:
            self.saved = None
            return self
        sys.stderr.flush()
        os.dup2(self.devnull, 2)
        return self

    def __exit__(self, *exc_info):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            os.close(self.devnull)


def int_at_least(minimum: int):
    """argparse ``type`` factory: an integer >= ``minimum`` (argparse names the flag and exits
    2 otherwise)."""

    def parse(text: str) -> int:
        return _number(text, int, f"an integer >= {minimum}", lambda value: value >= minimum)

    parse.__name__ = f"int_at_least_{minimum}"
    return parse


#: argparse ``type``: an integer >= 1.
positive_int = int_at_least(1)
#: argparse ``type``: an integer >= 0.
non_negative_int = int_at_least(0)


def positive_float(text: str) -> float:
    """argparse ``type``: a finite number > 0 (no 0, inf or nan)."""
    return _number(text, float, "a finite number > 0",
                   lambda value: math.isfinite(value) and value > 0)


def non_negative_float(text: str) -> float:
    """argparse ``type``: a finite number >= 0."""
    return _number(text, float, "a finite number >= 0",
                   lambda value: math.isfinite(value) and value >= 0)


def _number(text, kind, expected, valid):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def output_folder(text: str) -> Path:
    """argparse ``type``: a folder that is, or can be created, and written to."""
    path = Path(text)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder; pass a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable; pass another folder")
    return path


#: What makes a folder a source of each dataset, as ``keras_latent.data`` looks for it: its
#: ``.npz``, an unpacked folder of its official files by one of these names, or those files
#: in the folder itself. Kept here so that ``--data-dir`` is checked before Keras loads
#: (``keras_latent.data`` imports it); tests/test_process_faults.py checks that both agree.
DATA_SOURCES = {
    "mnist": ("mnist.npz", ("mnist",), "train-images-idx3-ubyte.gz"),
    "fashion_mnist": ("fashion_mnist.npz", ("fashion-mnist", "fashion_mnist"),
                      "train-images-idx3-ubyte.gz"),
    "cifar10": ("cifar10.npz", ("cifar-10-batches-py",), "data_batch_1"),
}

#: The models the recipes write, for messages that point at a real file.
RECIPE_MODELS = ("autoencoder.keras", "classifier.keras", "simclr.keras", "probe.keras")


def data_folder(text: str) -> Path:
    """argparse ``type``: ``--data-dir``, a folder that exists (what it must hold depends on
    ``--dataset``: ``check_data_folder``, once every flag is parsed)."""
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{path} does not exist; pass the folder that holds "
                                         "the dataset's .npz (e.g. mnist.npz)")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file, not a folder; pass the folder it "
                                         "is in")
    return path


def check_data_folder(folder, dataset: str) -> None:
    """Raise ``RunError`` when ``folder`` (``--data-dir``) holds nothing ``dataset`` can be
    loaded from, saying what it does hold: found now, not after TensorFlow has loaded.

    A dataset this table does not know is left for the loader to refuse."""
    if folder is None or dataset not in DATA_SOURCES:
        return
    folder = Path(folder)
    file_name, folder_names, official_file = DATA_SOURCES[dataset]
    if ((folder / file_name).is_file() or (folder / official_file).is_file()
            or any((folder / name).is_dir() for name in folder_names)):
        return
    raise RunError(f"{folder} holds no {file_name} ({_contents(folder)}); pass the folder that "
                   f"holds {file_name}, or leave --data-dir out")


def _contents(folder, shown=5) -> str:
    """What ``folder`` holds, in a few words: 'it holds a.npz, b/' or 'it is empty'."""
    try:
        names = sorted(path.name + ("/" if path.is_dir() else "") for path in folder.iterdir()
                       if not path.name.startswith("."))
    except OSError as error:
        return f"it cannot be read: {error.strerror}"
    if not names:
        return "it is empty"
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return f"it holds {', '.join(names[:shown])}{more}"


def model_file_problem(path) -> str | None:
    """What is wrong with ``path`` as a ``.keras`` model file to load, in one line naming the
    fix, or None when it may be one: missing, a folder (naming the models inside), or not a
    ``.keras`` file. Standard library only, so a command checks its model argument before
    TensorFlow loads; ``keras_latent.models.load_model`` then checks the archive itself."""
    path = Path(path)
    if not path.exists():
        return (f"no model file at {path}; check the path (a recipe's run folder holds "
                f"{_model_names(None)})")
    if path.is_dir():
        return (f"{path} is a folder, not a model file; pass the .keras file inside it "
                f"({_model_names(path)})")
    if path.name.endswith(".weights.h5") or path.suffix != ".keras":
        return (f"{path} is not a .keras model file; save models with model.save('name.keras') "
                "(a .weights.h5 file holds weights only: build the model, then "
                "model.load_weights())")
    return None


def _model_names(folder) -> str:
    """The ``.keras`` files in ``folder`` (else those a recipe writes), as words."""
    found = sorted(path.name for path in folder.glob("*.keras")) if folder else []
    if found:
        return "it holds " + ", ".join(found[:5]) + (" ..." if len(found) > 5 else "")
    return "e.g. " + ", ".join(RECIPE_MODELS[:-1]) + " or " + RECIPE_MODELS[-1]
