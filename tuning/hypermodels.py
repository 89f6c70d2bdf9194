"""KerasTuner search spaces over the three paradigms: autoencoder, classifier, SimCLR.

Each HyperModel takes its fixed arguments (the data, the range of the search, the training
config) in ``__init__`` and checks them there, so a bad search fails before the first trial.
``build(hp)`` declares the hyperparameters where they are used and returns the compiled model;
``fit(hp, model, ...)`` trains it on the same tf.data pipelines, optimiser and callbacks as the
paradigm in ``keras_latent.paradigms``, so a trial's score means what a real run's would.
"""

from __future__ import annotations

import dataclasses

import keras_tuner

from keras_latent.models import get_preset
from keras_latent.models.presets import PRESETS
from keras_latent.paradigms.autoencoder import (
    autoencoder_datasets,
    build_autoencoder,
    compile_autoencoder,
)
from keras_latent.paradigms.classifier import build_classification_model, classifier_datasets
from keras_latent.paradigms.config import TrainingConfig
from keras_latent.paradigms.contrastive import (
    build_simclr,
    compile_simclr,
    simclr_batch_config,
    simclr_datasets,
)
from keras_latent.paradigms.fitting import (
    check_labels,
    fit,
    steps_per_epoch,
    training_scope,
)
from keras_latent.paradigms.callbacks import KNNMonitor
from keras_latent.paradigms.probe import compile_classifier


class SearchSpaceError(ValueError):
    """A search space or fixed argument that cannot work; the message names the fix."""


def _power_of_two(value):
    return isinstance(value, int) and value > 0 and value & (value - 1) == 0


@dataclasses.dataclass(frozen=True)
class EncoderSpace:
    """The ranges of the encoder knobs shared by every search.

    Args:
        min_depth, max_depth: number of stride-2 conv stages.
        kernel_sizes: the kernel sizes each stage chooses from.
        min_channels, max_channels: powers of two; each stage picks one in between (log scale).
        latent_dims: one value fixes the latent size (the default, 128, keeps runs comparable);
            several make it a hyperparameter.
        batch_norm: fixed, not searched (every preset uses it).
        preset: search around a named preset (``models.PRESETS``) instead of plain strided
            stages: its channel pyramid is rescaled (``base_channels``, a power of two in
            min_channels..max_channels) and one kernel size is chosen for every stage; the
            depth knobs are then unused.
    """

    min_depth: int = 2
    max_depth: int = 4
    kernel_sizes: tuple = (3, 5, 7)
    min_channels: int = 8
    max_channels: int = 256
    latent_dims: tuple = (128,)
    batch_norm: bool = True
    preset: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "kernel_sizes", tuple(self.kernel_sizes))
        object.__setattr__(self, "latent_dims", tuple(self.latent_dims))
        if not 1 <= self.min_depth <= self.max_depth:
            raise SearchSpaceError(
                f"need 1 <= min_depth <= max_depth, got {self.min_depth}..{self.max_depth}; "
                "e.g. min_depth=2, max_depth=4"
            )
        if not self.kernel_sizes or any(
                not isinstance(k, int) or k < 1 for k in self.kernel_sizes):
            raise SearchSpaceError(
                f"kernel_sizes must be positive ints, got {self.kernel_sizes!r}; e.g. (3, 5, 7)")
        if not (_power_of_two(self.min_channels) and _power_of_two(self.max_channels)
                and self.min_channels <= self.max_channels):
            raise SearchSpaceError(
                f"min_channels and max_channels must be powers of two with min <= max, got "
                f"{self.min_channels}..{self.max_channels}; e.g. 8..256"
            )
        if not self.latent_dims or any(
                not isinstance(d, int) or d < 1 for d in self.latent_dims):
            raise SearchSpaceError(
                f"latent_dims must be positive ints, got {self.latent_dims!r}; e.g. (128,)")
        if self.preset is not None and self.preset not in PRESETS:
            raise SearchSpaceError(f"unknown preset {self.preset!r}; available: {sorted(PRESETS)}")

    def check_image_shape(self, image_shape):
        """Every stride-2 stage needs at least 2 pixels to halve; fail before any trial does."""
        if self.preset is not None:
            return  # a preset's stages are fixed; building it names a shape it cannot take
        smallest = min(image_shape[:2])
        if smallest <= 2 ** (self.max_depth - 1):
            raise SearchSpaceError(
                f"max_depth={self.max_depth} halves {smallest}-pixel images to nothing; "
                f"use max_depth <= {max(1, (smallest - 1).bit_length())} for this dataset"
            )


def declare_encoder(hp, space: EncoderSpace):
    """Declare the encoder knobs (one place for all three searches) -> (config, latent_dim)."""
    config = _declare_preset(hp, space) if space.preset else _declare_stages(hp, space)
    if len(space.latent_dims) == 1:
        return config, space.latent_dims[0]
    return config, hp.Choice("latent_dim", list(space.latent_dims))


def _declare_preset(hp, space: EncoderSpace):
    widths = [2 ** i for i in range(space.min_channels.bit_length() - 1,
                                    space.max_channels.bit_length())]
    first = PRESETS[space.preset]["channels"][0]
    base = hp.Choice("base_channels", widths, default=first if first in widths else widths[0])
    kernel = hp.Choice("kernel_size", list(space.kernel_sizes))
    return get_preset(space.preset, base_channels=base, kernel_sizes=kernel)


def _declare_stages(hp, space: EncoderSpace):
    depth = hp.Int("depth", space.min_depth, space.max_depth, default=space.min_depth)
    channels, kernel_sizes = [], []
    for stage in range(space.max_depth):
        # Every stage's knobs are in the space from the start, active only when the network is
        # deep enough: the first deep trial samples them instead of taking their defaults.
        deep_enough = list(range(max(stage + 1, space.min_depth), space.max_depth + 1))
        with hp.conditional_scope("depth", deep_enough):
            if stage < depth:
                channels.append(hp.Int(
                    f"channels_{stage}", space.min_channels, space.max_channels, step=2,
                    sampling="log",
                    default=min(space.max_channels, space.min_channels * 2 ** stage),
                ))
                kernel_sizes.append(hp.Choice(f"kernel_size_{stage}", list(space.kernel_sizes)))
    return {"kind": "conv", "channels": channels, "kernel_sizes": kernel_sizes, "strides": 2,
            "batch_norm": space.batch_norm}


def declare_learning_rate(hp):
    return hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)


class _ParadigmHyperModel(keras_tuner.HyperModel):
    """What the three searches share: checked fixed arguments and a ``fit`` that trains the way
    the paradigms do (``keras_latent.paradigms.fitting.fit``) and returns the History."""

    objective: keras_tuner.Objective

    def __init__(self, splits, *, space: EncoderSpace | None = None,
                 config: TrainingConfig | None = None, name=None):
        super().__init__(name=name)
        self.splits = splits
        self.space = space or EncoderSpace()
        self.config = config or TrainingConfig()
        if not isinstance(self.space, EncoderSpace):
            raise SearchSpaceError(f"space must be an EncoderSpace, got {type(space).__name__}")
        if not isinstance(self.config, TrainingConfig):
            raise SearchSpaceError(f"config must be a TrainingConfig, got {type(config).__name__}")
        if self.config.output_dir is not None:
            raise SearchSpaceError(
                "config.output_dir must be None when tuning: every trial would resume from the "
                "same BackupAndRestore folder. KerasTuner keeps each trial's checkpoint in its "
                "project folder."
            )
        if len(splits.train) == 0:
            raise SearchSpaceError(f"{splits.name!r} has an empty train split; nothing to tune on")
        if len(splits.val) < 2:
            raise SearchSpaceError(
                f"{splits.name!r} has {len(splits.val)} validation images; the objective "
                f"{self.objective.name!r} needs a validation split (validation_fraction > 0)"
            )
        self.space.check_image_shape(splits.image_shape)

    def _total_steps(self, drop_remainder=False):
        """Training steps of a trial (some presets size a schedule by it)."""
        return self.config.epochs * self._steps(drop_remainder)

    def _trial_config(self, hp):
        """The run's config at this trial's learning rate: what the paradigm compiles with."""
        return self.config.replace(learning_rate=declare_learning_rate(hp))

    def _steps(self, drop_remainder=False):
        return steps_per_epoch(len(self.splits.train), self.config.batch_size,
                               drop_remainder=drop_remainder)

    def datasets(self, hp):
        """(train, val, monitors) for a trial: the paradigm's pipelines."""
        raise NotImplementedError

    def untrained_score(self, hp) -> float:
        """The objective of a model built with ``hp`` and not trained: what a trial has to beat
        to have learned anything (the search warns when its best trial barely does)."""
        model = self.build(hp)
        _, val, monitors = self.datasets(hp)
        with training_scope(self.config):
            logs = {f"val_{name}": value for name, value in
                    model.evaluate(val, return_dict=True, verbose=0).items()}
            for monitor in monitors:  # the k-NN objective is a monitor's
                monitor.set_model(model)
                monitor.on_epoch_end(0, logs)
        return float(logs[self.objective.name])

    def fit(self, hp, model, *args, callbacks=(), epochs=None, verbose=None, **kwargs):
        """Train ``model`` on this HyperModel's splits; ``epochs``/``initial_epoch`` come from
        the tuner (Hyperband's brackets set them) and its callbacks run after our monitors."""
        if args:
            raise TypeError("the data comes from the splits given to __init__; pass no "
                            "positional arguments to search()")
        config = self.config.replace(
            epochs=epochs or self.config.epochs,
            verbose=self.config.verbose if verbose is None else verbose,
            callbacks=(*self.config.callbacks, *callbacks),
        )
        train, val, monitors = self.datasets(hp)
        with training_scope(config):
            fit(model, train, val, config, monitor=self.objective.name,
                mode=self.objective.direction, monitors=monitors, **kwargs)
        return model.history


class AutoencoderHyperModel(_ParadigmHyperModel):
    """Encoder + mirrored decoder trained on MAE (the figure reports compare).

    Args:
        objective: ``"mae"`` ranks trials by validation MAE; ``"knn"`` by the k-NN accuracy of
            the validation codes (``val_knn_accuracy``), closer to what a frozen probe reads:
            the lowest MAE need not give the most separable codes.
        mask_ratios: the denoising corruption (``Augmenter(mask_ratio=...)``: the encoder sees
            the image with grey squares, the decoder must give the clean one); one value fixes
            it, several make ``mask_ratio`` a hyperparameter.
        knn_examples: training images the k-NN monitor looks codes up among.
    """

    OBJECTIVES = {"mae": keras_tuner.Objective("val_mae", direction="min"),
                  "knn": keras_tuner.Objective("val_knn_accuracy", direction="max")}
    objective = OBJECTIVES["mae"]

    def __init__(self, splits, *, objective="mae", mask_ratios=(0.0,), knn_examples=5000,
                 **kwargs):
        if objective not in self.OBJECTIVES:
            raise SearchSpaceError(f"objective must be one of {sorted(self.OBJECTIVES)}, got "
                                   f"{objective!r}")
        self.objective = self.OBJECTIVES[objective]
        self.mask_ratios = tuple(mask_ratios)
        if not self.mask_ratios or any(not 0 <= r < 1 for r in self.mask_ratios):
            raise SearchSpaceError(f"mask_ratios must be in [0, 1), got {mask_ratios!r}; "
                                   "e.g. (0.0, 0.25, 0.5)")
        self.knn_examples = knn_examples
        super().__init__(splits, **kwargs)
        if objective == "knn":
            check_labels(splits.val.labels, splits.num_classes, "validation labels")

    def _mask_ratio(self, hp):
        # Declared in build() so it is in the space from the first trial; read again in fit().
        if len(self.mask_ratios) == 1:
            return self.mask_ratios[0]
        return hp.Choice("mask_ratio", list(self.mask_ratios))

    def build(self, hp):
        architecture, latent_dim = declare_encoder(hp, self.space)
        self._mask_ratio(hp)
        with training_scope(self.config):
            model = build_autoencoder(self.splits, architecture, latent_dim,
                                      total_steps=self._total_steps())
            compile_autoencoder(model, self._trial_config(hp), self._steps(), "mae")
        return model

    def datasets(self, hp):
        mask_ratio = self._mask_ratio(hp)
        train, val = autoencoder_datasets(self.splits, self.config,
                                          {"mask_ratio": mask_ratio} if mask_ratio else None)
        monitors = []
        if self.objective.name == "val_knn_accuracy":
            monitors.append(KNNMonitor.from_splits(self.splits, self.knn_examples,
                                                   self.config.seed))
        return train, val, monitors


class ClassifierHyperModel(_ParadigmHyperModel):
    """Encoder + head trained jointly on labels, searched by validation accuracy.

    Args:
        augment: augmentation preset for training (the paradigm's default, ``"light"``).
        max_head_width: largest hidden width of the MLP head (powers of two from 32).
    """

    objective = keras_tuner.Objective("val_accuracy", direction="max")

    def __init__(self, splits, *, augment="light", max_head_width=512, **kwargs):
        super().__init__(splits, **kwargs)
        check_labels(splits.train.labels, splits.num_classes, "train labels")
        check_labels(splits.val.labels, splits.num_classes, "validation labels")
        if not (_power_of_two(max_head_width) and max_head_width >= 32):
            raise SearchSpaceError(
                f"max_head_width must be a power of two >= 32, got {max_head_width!r}")
        self.augment = augment
        self.max_head_width = max_head_width

    def build(self, hp):
        architecture, latent_dim = declare_encoder(hp, self.space)
        head = hp.Choice("head", ["linear", "mlp"])
        head_kwargs = None
        if head == "mlp":
            with hp.conditional_scope("head", ["mlp"]):
                head_kwargs = {
                    "widths": [hp.Int("head_width", 32, self.max_head_width, step=2,
                                      sampling="log", default=min(256, self.max_head_width))],
                    "dropout": hp.Float("head_dropout", 0.0, 0.5, step=0.1, default=0.0),
                }
        with training_scope(self.config):
            model = build_classification_model(self.splits, architecture, latent_dim,
                                               head=head, head_kwargs=head_kwargs,
                                               total_steps=self._total_steps())
            compile_classifier(model, self._trial_config(hp), self._steps())
        return model

    def datasets(self, hp):
        train, val = classifier_datasets(self.splits, self.config, self.augment)
        return train, val, []


class SimCLRHyperModel(_ParadigmHyperModel):
    """SimCLR searched by the online k-NN accuracy of its codes on the validation split.

    Never by the contrastive loss: its scale moves with the temperature being searched.

    Args:
        augment: augmentation preset (``"simclr"``); its strength is a hyperparameter.
        max_projection_width: largest hidden width of the projection head (powers of two
            from 32).
        projection_dim: output size of the projection head (fixed).
        knn_examples: training images the k-NN monitor looks codes up among.
    """

    objective = keras_tuner.Objective("val_knn_accuracy", direction="max")

    def __init__(self, splits, *, augment="simclr", max_projection_width=512,
                 projection_dim=128, knn_examples=5000, **kwargs):
        super().__init__(splits, **kwargs)
        if not (_power_of_two(max_projection_width) and max_projection_width >= 32):
            raise SearchSpaceError(f"max_projection_width must be a power of two >= 32, got "
                                   f"{max_projection_width!r}")
        self.config = simclr_batch_config(splits, self.config)  # as train_simclr does
        if len(splits.train) < self.config.batch_size:
            raise SearchSpaceError(f"SimCLR needs 2 or more training images, got "
                                   f"{len(splits.train)}")
        if knn_examples < 1:
            raise SearchSpaceError(f"knn_examples must be >= 1, got {knn_examples!r}")
        self.augment = augment
        self.max_projection_width = max_projection_width
        self.projection_dim = projection_dim
        self.knn_examples = knn_examples

    def _augment_strength(self, hp):
        # Declared in build() so it is in the space from the first trial; read again in fit().
        return hp.Float("augment_strength", 0.5, 1.5, step=0.25, default=1.0)

    def build(self, hp):
        architecture, latent_dim = declare_encoder(hp, self.space)
        temperature = hp.Float("temperature", 0.05, 1.0, sampling="log", default=0.5)
        width = hp.Int("projection_width", 32, self.max_projection_width, step=2,
                       sampling="log", default=self.max_projection_width)
        self._augment_strength(hp)
        with training_scope(self.config):
            model = build_simclr(self.splits, architecture, latent_dim, temperature=temperature,
                                 projection_hidden=width, projection_dim=self.projection_dim,
                                 strategy=self.config.strategy,
                                 total_steps=self._total_steps(drop_remainder=True))
            compile_simclr(model, self._trial_config(hp), self._steps(drop_remainder=True))
        return model

    def datasets(self, hp):
        # The strength scales a preset's colour jitter; a ready callable is used as given.
        strength = self._augment_strength(hp) if isinstance(self.augment, str) else 1.0
        return simclr_datasets(self.splits, self.config, self.augment, strength=strength,
                               knn_examples=self.knn_examples)


HYPERMODELS = {
    "autoencoder": AutoencoderHyperModel,
    "classifier": ClassifierHyperModel,
    "simclr": SimCLRHyperModel,
}
