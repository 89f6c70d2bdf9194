"""The command-line flags shared by the recipes, the tuner and ``keras-latent``: argparse types
that name the flag and the fix, the recipes' common parser, and how a recipe ends on an error.

Standard library only, so a command parses its flags, and answers ``--help`` or a bad flag,
before TensorFlow is loaded.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

#: ``--strategy`` choices (here, not beside ``tf.distribute``, so that flags parse without
#: importing TensorFlow).
STRATEGIES = ("mirrored", "multi_worker")

#: ``--quick``: a smoke run of a couple of minutes on a laptop CPU (a slice, one epoch).
QUICK_LIMIT = 2000
QUICK_EPOCHS = 1

#: A recipe's exit status on an error the user can act on, as for ``keras-latent`` and the tuner.
EXIT_ERROR = 2
#: ... and on Ctrl-C (the shell's convention for SIGINT).
EXIT_INTERRUPTED = 130


class RunError(Exception):
    """A failure a user can act on; ``run_recipe`` prints its one-line message and exits 2."""


def run_recipe(main, argv=None):
    """Run a recipe's ``main`` as a script: one line on stderr, not a traceback, when it fails
    in a way the user can fix (exit status 2) or is interrupted with Ctrl-C (130)."""
    try:
        main(argv)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume training from the last "
              "finished epoch (or delete the output folder to start over)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def positive_int(text: str) -> int:
    """argparse ``type``: an integer >= 1 (argparse names the flag and exits 2 otherwise)."""
    return _number(text, int, "an integer >= 1", lambda value: value >= 1)


def non_negative_int(text: str) -> int:
    """argparse ``type``: an integer >= 0."""
    return _number(text, int, "an integer >= 0", lambda value: value >= 0)


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


def recipe_parser(doc: str, *, name: str, epochs: int, batch_size: int,
                  learning_rate: float) -> argparse.ArgumentParser:
    """The flags every recipe takes; defaults come from the recipe's hyperparameter block."""
    title = (doc or "").strip().splitlines()[0] if doc else name
    parser = argparse.ArgumentParser(
        prog=f"python recipes/{name}.py", description=title,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data-dir", default=None,
                        help="folder with mnist.npz / cifar10.npz (else KERAS_LATENT_DATA_DIR, "
                             "Keras' cache, then TensorFlow Datasets)")
    parser.add_argument("--output", type=output_folder, default=f"runs/{name}", help="run folder")
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--batch-size", type=positive_int, default=batch_size)
    parser.add_argument("--learning-rate", type=positive_float, default=learning_rate)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="cap every split at N examples, for a quick look")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: --limit {QUICK_LIMIT}, {QUICK_EPOCHS} epoch, small t-SNE")
    parser.add_argument("--precision", default="auto",
                        choices=["auto", "float32", "bfloat16", "float16"],
                        help="'auto': bfloat16 on CPUs with avx512_bf16/amx_bf16 and on Ampere+ "
                             "GPUs, float16 on older GPUs, else float32")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    parser.add_argument("--tensorboard", action="store_true",
                        help="TensorBoard event files under OUTPUT/tensorboard/<phase>/ (view "
                             "with `tensorboard --logdir OUTPUT`, from the [tensorboard] extra)")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="train under tf.distribute: 'mirrored' over this machine's GPUs, "
                             "'multi_worker' over the machines TF_CONFIG names (README: "
                             "'Training on several machines'); --batch-size is the global batch")
    return parser
