"""The dataset-named recipes pass the library exactly the values they passed when each was its
own script, so their runs stay the same (and resume from the same phases.json): the constants
below are those scripts' hyperparameter blocks, copied before the settings tables replaced them.
No data is read and nothing trains: the data loader and the experiments are stand-ins."""

import importlib
import inspect
from pathlib import Path
from types import SimpleNamespace

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

MLP_PROBE = {"head": "mlp", "head_kwargs": {"widths": [512], "dropout": 0.3}}
MNIST_CONV_32 = {"kind": "conv", "channels": [32, 64, 128], "kernel_sizes": 3, "strides": 2,
                 "batch_norm": True, "activation": "relu"}

# script: (experiment function, its kwargs, (epochs, batch size, learning rate), config extras)
BEFORE = {
    "mnist_autoencoder": ("autoencoder_experiment", dict(  # probe copies added later, on purpose
        architecture=MNIST_CONV_32, latent_dim=128, loss="mae",
        probe={**MLP_PROBE, "augment": "shift_flip", "augmented_copies": 4},
        probe_learning_rate=3e-3), (30, 128, 2e-3), {}),
    # SiLU, 9 epochs, average pooling, probe batches of 512, no dropout, denoising, and 4
    # probe heads for 40 epochs later, on purpose
    "cifar_autoencoder": ("autoencoder_experiment", dict(
        architecture={"kind": "conv", "channels": [32, 64, 128], "kernel_sizes": 3, "strides": 2,
                      "pooling": "avg", "convs_per_stage": 2, "batch_norm": True,
                      "activation": "silu", "dropout": 0.0}, latent_dim=128, loss="mae",
        augment={"noise_std": 0.1},
        probe={"head": "mlp", "head_kwargs": {"widths": [1024], "dropout": 0.5},
               "augment": "shift_flip", "augmented_copies": 2, "members": 4},
        probe_learning_rate=3e-3, probe_batch_size=512, probe_epochs=40), (9, 128, 2e-3), {}),
    "mnist_classifier": ("classifier_experiment", dict(  # a zero-started head later, on purpose
        architecture={**MNIST_CONV_32, "convs_per_stage": 2, "dropout": 0.3}, latent_dim=128,
        head_kwargs={"zero_init": True},
        augment={"crop_scale": (0.8, 1.0), "crop_ratio": (0.9, 1.1)}), (15, 128, 2e-3), {}),
    "cifar_classifier": ("classifier_experiment", dict(
        architecture="cifar_fast", latent_dim=128, head_kwargs={"logit_scale": 1 / 9},
        augment={"translate": 2, "horizontal_flip": "alternate"}), (10, 1024, 1.5),
        {"base": "FAST_CLASSIFIER_CONFIG"}),
    "mnist_simclr": ("simclr_experiment", dict(  # probe copies added later, on purpose
        architecture="mnist_conv", latent_dim=128, temperature=0.2, reconstruction_weight=0.0,
        projection_hidden=512, projection_dim=128,
        probe={**MLP_PROBE, "augment": "shift_flip", "augmented_copies": 4},
        probe_learning_rate=3e-3),
        (30, 256, 2e-3), {"warmup_epochs": 2}),
    "cifar_simclr": ("simclr_experiment", dict(  # temperature 0.5 -> 0.2 later, on purpose
        architecture="cifar_fast", latent_dim=128, temperature=0.2, reconstruction_weight=0.0,
        projection_hidden=512, projection_dim=128, probe=MLP_PROBE, probe_learning_rate=3e-3),
        (16, 512, 1e-3), {"warmup_epochs": 1}),
}


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """Run a recipe by name with stand-ins for the data and the experiments; returns what the
    experiment was called with."""
    monkeypatch.syspath_prepend(str(RECIPES))
    from keras_latent import experiments

    plumbing = importlib.import_module("_plumbing")
    fake = SimpleNamespace(train=[0] * 3, val=[0] * 2, test=[0] * 2, image_shape=(28, 28, 1))
    monkeypatch.setattr(plumbing, "_load_splits", lambda args, dataset: fake)
    calls = {}

    def stand_in(name):
        defaults = {key: parameter.default for key, parameter in
                    inspect.signature(getattr(experiments, name)).parameters.items()}

        def experiment_function(splits, output_dir, **kwargs):
            calls.update(name=name, splits=splits, kwargs=kwargs, defaults=defaults)
            return {}
        return experiment_function

    for name in ("autoencoder_experiment", "classifier_experiment", "simclr_experiment"):
        monkeypatch.setattr(experiments, name, stand_in(name))

    def run(name, *argv):
        importlib.import_module(name).main(["--output", str(tmp_path / name), *argv])
        assert calls["splits"] is fake
        return calls
    return run


def _expected_config(paradigms, numbers, extras):
    epochs, batch_size, learning_rate = numbers
    extras = dict(extras)
    base = getattr(paradigms, extras.pop("base")) if "base" in extras else None
    return (base or paradigms.TrainingConfig()).replace(
        epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, seed=0,
        verbose="auto", precision="auto", tensorboard=False, strategy=None, **extras)


@pytest.mark.parametrize("script", sorted(BEFORE))
def test_a_dataset_script_passes_the_values_it_always_passed(captured, script):
    from keras_latent import paradigms

    function, before, numbers, extras = BEFORE[script]
    calls = captured(script)
    assert calls["name"] == function
    kwargs = dict(calls["kwargs"])
    expected = dict(before, tsne=2000)
    if "probe_learning_rate" in expected:
        rate = expected.pop("probe_learning_rate")
        epochs = expected.pop("probe_epochs", paradigms.PROBE_CONFIG.epochs)
        batch_size = expected.pop("probe_batch_size", paradigms.PROBE_CONFIG.batch_size)
        expected["probe_config"] = paradigms.PROBE_CONFIG.replace(
            learning_rate=rate, epochs=epochs, batch_size=batch_size)
    assert kwargs.pop("config") == _expected_config(paradigms, numbers, extras)
    # What the old script did not pass must be the experiment's own default.
    for name in set(kwargs) - set(expected):
        assert kwargs[name] == calls["defaults"][name], name
    assert {name: kwargs[name] for name in expected} == expected


@pytest.mark.parametrize("method", ["autoencoder", "classifier", "simclr"])
def test_dataset_flag_picks_the_tables_row(captured, method):
    """``--dataset cifar10`` on the method's own module passes what cifar_<method>.py passes;
    Fashion-MNIST runs with MNIST's settings."""
    cifar = dict(captured(f"cifar_{method}")["kwargs"])
    assert dict(captured(method, "--dataset", "cifar10")["kwargs"]) == cifar
    mnist = dict(captured(f"mnist_{method}")["kwargs"])
    assert dict(captured(method, "--dataset", "fashion_mnist")["kwargs"]) == mnist


def test_probe_epochs_in_a_settings_row_set_the_probe_schedule(monkeypatch):
    """``probe_epochs`` is optional: without it the probe keeps ``PROBE_CONFIG``'s epochs."""
    monkeypatch.syspath_prepend(str(RECIPES))
    from keras_latent import paradigms

    plumbing = importlib.import_module("_plumbing")
    shorter = plumbing.probe_config({"probe_learning_rate": 1e-3, "probe_epochs": 7})
    assert (shorter.epochs, shorter.learning_rate) == (7, 1e-3)
    default = plumbing.probe_config({"probe_learning_rate": 1e-3})
    assert default.epochs == paradigms.PROBE_CONFIG.epochs
