"""The models, compile and input pipelines the benchmarks time, made by the paradigms' own
``build_*``, ``compile_*`` and ``*_datasets`` functions from the recipes' SETTINGS tables: a
benchmark measures what a user's run trains, and cannot drift from it."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
PARADIGMS = ("autoencoder", "classifier", "simclr")
# Each paradigm's default augmentation, as train_* takes it when a recipe names none.
DEFAULT_AUGMENT = {"autoencoder": None, "classifier": "light", "simclr": "simclr"}


def recipe_settings(paradigm, dataset="cifar10") -> dict:
    """``recipes/<paradigm>.py``'s ``SETTINGS[dataset]`` (the recipes are scripts, not a
    package: their folder goes on ``sys.path`` once, as running them does)."""
    if str(RECIPES) not in sys.path:
        sys.path.insert(0, str(RECIPES))
    return dict(importlib.import_module(paradigm).SETTINGS[dataset])


def recipe_config(paradigm, settings, **overrides):
    """The recipe's optimisation settings on its base config (SGD for the fast classifier,
    the SimCLR config with its warm-up, plain AdamW otherwise)."""
    from keras_latent import paradigms

    base = {"classifier": paradigms.TrainingConfig(), "autoencoder": paradigms.TrainingConfig(),
            "simclr": paradigms.SIMCLR_CONFIG}[paradigm]
    if settings.get("base_config"):
        base = getattr(paradigms, settings["base_config"])
    chosen = {key: settings[key] for key in ("batch_size", "learning_rate", "warmup_epochs")
              if key in settings}
    return base.replace(**{**chosen, **overrides})


def current_precision() -> str:
    """The ``TrainingConfig.precision`` of Keras' global policy, so that building under
    ``training_scope`` keeps the policy a benchmark has set."""
    import keras

    return keras.mixed_precision.global_policy().name.removeprefix("mixed_")


def splits_of(images, labels, name="cifar10"):
    """Arrays as a ``DatasetSplits`` (train only), for benchmarks on synthetic images."""
    from keras_latent.data.datasets import DatasetSplits, Split, get_spec

    empty = Split(images[:0], labels[:0])
    return DatasetSplits(name, Split(images, labels), empty, empty,
                         tuple(get_spec(name).class_names))


def model_and_data(paradigm, splits, config, settings):
    """(compiled model, training pipeline) as ``train_<paradigm>`` makes them; build under
    ``fitting.training_scope(config)``."""
    from keras_latent.paradigms import autoencoder, classifier, contrastive, probe
    from keras_latent.paradigms.fitting import steps_per_epoch

    arch, latent_dim = settings["architecture"], settings.get("latent_dim", 128)
    augment = settings.get("augment", DEFAULT_AUGMENT[paradigm])
    steps = steps_per_epoch(len(splits.train), config.batch_size,
                            drop_remainder=paradigm == "simclr")
    total_steps = config.epochs * steps
    if paradigm == "autoencoder":
        model = autoencoder.build_autoencoder(splits, arch, latent_dim, total_steps=total_steps)
        autoencoder.compile_autoencoder(model, config, steps, settings.get("loss", "mae"))
        data, _ = autoencoder.autoencoder_datasets(splits, config, augment)
    elif paradigm == "classifier":
        model = classifier.build_classification_model(
            splits, arch, latent_dim, head_kwargs=settings.get("head_kwargs"),
            total_steps=total_steps)
        probe.compile_classifier(model, config, steps)
        data, _ = classifier.classifier_datasets(splits, config, augment)
    else:
        model = contrastive.build_simclr(
            splits, arch, latent_dim, temperature=settings.get("temperature", 0.5),
            projection_hidden=settings.get("projection_hidden", 512),
            projection_dim=settings.get("projection_dim", 128), total_steps=total_steps)
        contrastive.compile_simclr(model, config, steps)
        data, _, _ = contrastive.simclr_datasets(splits, config, augment, knn_examples=0)
    return model, data
