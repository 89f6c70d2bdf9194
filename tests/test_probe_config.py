"""Every recipe probes under the run's settings: ``--precision`` and ``--seed`` reach the probe
(``paradigms.probe_config`` is the one place that builds its configuration)."""

import importlib
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from keras_latent import paradigms
from keras_latent.models import build_encoder

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


class _Probed(Exception):
    """Raised by the stand-in probe with the configuration it was given."""


def _stand_in_training(monkeypatch):
    """Encoders come back untrained at once; the probe stops the recipe with its config."""
    run = SimpleNamespace(model=SimpleNamespace(encoder=build_encoder((28, 28, 1), 8)))
    for name in ("train_autoencoder", "train_simclr"):
        monkeypatch.setattr(paradigms, name, lambda *args, **kwargs: run)

    def probe(*args, config=None, **kwargs):
        raise _Probed(config)

    monkeypatch.setattr(paradigms, "train_probe", probe)


@pytest.mark.parametrize("name, flags", [
    ("latent_sweep", ["--latent-dims", "8", "--base-channels", "4"]),
    ("few_shot", ["--num-labels", "20"]),
])
def test_recipe_probes_with_the_run_precision_and_seed(name, flags, data_dir, tmp_path,
                                                       monkeypatch):
    monkeypatch.syspath_prepend(str(RECIPES))
    recipe = importlib.import_module(name)
    _stand_in_training(monkeypatch)
    with pytest.raises(_Probed) as probed:
        recipe.main(["--output", str(tmp_path), "--limit", "64", "--epochs", "1", "--quiet",
                     "--precision", "float32", "--seed", "3", *flags])
    config = probed.value.args[0]
    assert (config.precision, config.seed) == ("float32", 3)
    assert config.epochs == paradigms.PROBE_CONFIG.epochs  # the probe's own schedule
    sys.modules.pop(name, None)
