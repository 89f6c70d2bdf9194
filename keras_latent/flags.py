"""The argparse types shared by the recipes, the tuner and ``keras-latent`` (each names the flag
and the fix) and the ``--strategy`` choices. The recipes' own parser and ending live in
``recipes/_plumbing.py``; ``RunError`` lives in ``keras_latent/errors.py``.

Standard library only, so a command parses its flags, and answers ``--help`` or a bad flag,
before TensorFlow is loaded.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

#: ``--strategy`` choices (here, not beside ``tf.distribute``, so that flags parse without
#: importing TensorFlow).
STRATEGIES = ("mirrored", "multi_worker")


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
