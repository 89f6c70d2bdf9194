"""The flags about where and how a command computes (``--backend``, ``--precision``,
``--strategy``) are the same on every entry point (``flags.add_device_flags``)."""

import importlib
import sys
from pathlib import Path

import pytest

from keras_latent.flags import BACKENDS, PRECISIONS, STRATEGIES

REPO = Path(__file__).resolve().parents[1]


def _recipe_parser():
    sys.path.insert(0, str(REPO / "recipes"))
    try:
        plumbing = importlib.import_module("_plumbing")
    finally:
        sys.path.remove(str(REPO / "recipes"))
    return plumbing.recipe_parser("A recipe.", name="autoencoder", epochs=1, batch_size=8,
                                  learning_rate=1e-3)


def _tuner_parser():
    sys.path.insert(0, str(REPO))
    try:
        return importlib.import_module("tuning.search").build_parser()
    finally:
        sys.path.remove(str(REPO))


def _option(parser, flag):
    return next(action for action in parser._actions if flag in action.option_strings)


@pytest.mark.parametrize("parser", [_recipe_parser, _tuner_parser], ids=["recipe", "tuner"])
def test_every_entry_point_has_the_same_device_flags(parser):
    parser = parser()
    assert tuple(_option(parser, "--backend").choices) == BACKENDS
    precision = _option(parser, "--precision")
    assert (tuple(precision.choices), precision.default) == (PRECISIONS, "auto")
    strategy = _option(parser, "--strategy")
    assert strategy.default is None and "mirrored" in strategy.choices
    assert set(strategy.choices) <= set(STRATEGIES)
    assert "(default: None)" not in parser.format_help()  # None: off, or Keras' own choice


def test_the_tuner_takes_strategy_and_its_older_mirrored_flag():
    parser = _tuner_parser()
    base = ["--task", "autoencoder", "--dataset", "mnist"]
    assert parser.parse_args(base).strategy is None
    assert parser.parse_args(base + ["--strategy", "mirrored"]).strategy == "mirrored"
    assert parser.parse_args(base + ["--mirrored"]).strategy == "mirrored"
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--strategy", "multi_worker"])  # KerasTuner's own workers
