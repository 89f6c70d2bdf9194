"""The machinery every paradigm shares: seeding, precision and device scope, the optimiser and
its schedule, input checks, and one ``fit`` call with the default callbacks."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_latent import backend
from keras_latent.errors import RunError
from keras_latent.evaluation.training_log import logged_history
from keras_latent.models import get_preset
from keras_latent.paradigms.callbacks import AtomicBackupAndRestore, default_callbacks
from keras_latent.paradigms.config import TrainingConfig
from keras_latent.paradigms.distributed import discard_worker_copy, write_path
from keras_latent.paradigms.lookahead import Lookahead
from keras_latent.schedules import Triangular


@dataclasses.dataclass
class TrainingRun:
    """What a paradigm returns: the trained model and its per-epoch history; a probe also its
    frozen encoder's codes by split name, which the evaluation reuses instead of encoding again."""

    model: Any
    history: dict
    codes: dict | None = None


def architecture_config(architecture, *, total_steps: int | None = None) -> dict:
    """A preset name or a config dict -> a fresh config dict for the model builders.

    With ``total_steps`` (the run's optimiser steps), a conv config with batch norm and no
    ``bn_momentum`` of its own gets one that fits the run (``bn_momentum_for``)."""
    if isinstance(architecture, str):
        config = get_preset(architecture)
    elif isinstance(architecture, dict):
        config = dict(architecture)
    else:
        raise TypeError("architecture must be a preset name or a config dict, got "
                        f"{type(architecture).__name__}.")
    if (total_steps is not None and config.get("kind", "conv") == "conv"
            and config.get("batch_norm") and "bn_momentum" not in config):
        config["bn_momentum"] = bn_momentum_for(total_steps)
    return config


def bn_momentum_for(total_steps: int) -> float:
    """A batch-norm momentum whose moving statistics catch up within ``total_steps`` steps.

    With Keras' 0.99 the statistics a model is evaluated with are still 85 % their initial
    values after a 16-step run (``--quick``), so a well-trained network scores near chance and a
    short tuning trial misranks settings. This gives the momentum whose initial values weigh
    1 % at the end, ``0.01 ** (1 / total_steps)``, kept in [0.5, 0.99]: runs of 460 steps or
    more keep Keras' 0.99.
    """
    return min(0.99, max(0.5, 0.01 ** (1.0 / max(1, int(total_steps)))))


@contextlib.contextmanager
def training_scope(config: TrainingConfig):
    """Seed everything, then build and compile under the config's precision and strategy.

    The global dtype policy is restored on exit so one mixed-precision run does not leak into
    the next one in the same process.
    """
    keras.utils.set_random_seed(config.seed)
    previous_policy = keras.config.dtype_policy()
    keras.mixed_precision.set_global_policy(config.dtype_policy)
    strategy_scope = config.strategy.scope() if config.strategy is not None else contextlib.nullcontext()
    try:
        with strategy_scope:
            yield
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)


def make_optimizer(config: TrainingConfig, steps_per_epoch: int, *, epochs: int | None = None):
    """The config's optimiser (AdamW or Nesterov SGD) with its learning-rate schedule."""
    epochs = epochs or config.epochs
    learning_rate = config.learning_rate
    total = max(1, steps_per_epoch * epochs)
    if config.schedule == "cosine":
        warmup = min(total - 1, steps_per_epoch * config.warmup_epochs)
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup else config.learning_rate,
            decay_steps=total - warmup,
            warmup_target=config.learning_rate if warmup else None,
            warmup_steps=warmup,
            alpha=0.01,
        )
    elif config.schedule == "triangular":
        learning_rate = Triangular(config.learning_rate, total)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=learning_rate, momentum=config.momentum,
                                    nesterov=True, weight_decay=config.weight_decay or None)
    return keras.optimizers.AdamW(learning_rate=learning_rate, weight_decay=config.weight_decay)


def steps_per_epoch(num_examples: int, batch_size: int, *, drop_remainder: bool = False) -> int:
    steps = num_examples // batch_size if drop_remainder else math.ceil(num_examples / batch_size)
    return max(1, steps)


def check_images(model_input_shape, splits) -> None:
    """Fail early, naming both shapes, when a dataset does not fit an encoder."""
    expected = tuple(model_input_shape[-3:])
    if tuple(splits.image_shape) != expected:
        raise ValueError(
            f"Images of {splits.name!r} have shape {tuple(splits.image_shape)} but the encoder "
            f"expects {expected}. Build the encoder with input_shape=splits.image_shape or pick "
            f"a dataset with {expected} images."
        )


def check_labels(labels, num_classes: int, what: str = "labels") -> None:
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"{what} must be class indices in [0, {num_classes}), found values from "
            f"{labels.min()} to {labels.max()}. Check the dataset's labels or num_classes."
        )


def fit(model, train_data, val_data, config: TrainingConfig, *, monitor: str, mode: str,
        monitors=(), output_dir=None, phase="training", reconstruct=None, **fit_kwargs) -> dict:
    """``model.fit`` with the default callbacks; returns the history dict. Its arguments are
    what differs between the paradigms' calls (monitor, phase, extra monitors...); the rest of
    ``model.fit`` passes through ``fit_kwargs``.

    With an output folder the history is the whole run's, read back from its
    ``training_log.csv``: a resumed run's curves start at epoch 1, and a run resumed after its
    last epoch (killed before it ended) returns the history of the model it restored.
    With ``config.tensorboard`` the epochs are logged under ``<tensorboard>/<phase>``, and the
    reconstructions of the first few ``reconstruct`` images (validation images) with them.
    Under a multi-worker strategy only the chief writes to ``output_dir``; the other workers
    write to temporary folders (``write_path``) deleted once ``fit`` is done."""
    if config.lookahead is not None:
        steps = _batches_per_epoch(train_data)
        if steps < 1:
            raise ValueError("lookahead needs a training dataset of known length (tf.data with "
                             "a finite cardinality, or a keras.utils.PyDataset).")
        # First, so the checkpoint and the logs see the averaged weights at each epoch's end.
        monitors = [Lookahead(steps * config.epochs, base=config.lookahead ** 5), *monitors]
    monitors = [PipelineEpochs(train_data, val_data), *monitors]
    output_dir = output_dir if output_dir is not None else config.output_dir
    written = write_path(output_dir, config.strategy) if output_dir is not None else None
    callbacks = default_callbacks(
        written, monitor=monitor, mode=mode, monitors=monitors,
        extra=[*phase_tensorboard(config, phase, reconstruct=reconstruct),
               *config.callbacks],
        keep_resume_state=config.keep_resume_state,
    )
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=config.verbose,
        shuffle=False,  # the tf.data pipelines shuffle (seeded, every epoch)
        **fit_kwargs,
    )
    history = history.history
    if written is not None:
        logged = logged_history(Path(written) / "training_log.csv")
        if len(logged.get("loss", [])) >= len(history.get("loss", [])):
            history = logged
        backup = next((callback for callback in callbacks
                       if isinstance(callback, AtomicBackupAndRestore)), None)
        if backup is not None and backup.resumed_epoch > config.epochs:
            warnings.warn(f"the resume state in {backup.backup_dir} had finished "
                          f"{backup.resumed_epoch} epochs, more than the {config.epochs} asked "
                          "for: nothing was trained and the model is that state's (delete the "
                          "folder to train from scratch)", stacklevel=2)
        discard_worker_copy(output_dir, written)
    warn_if_stuck(history)
    return history


class PipelineEpochs(keras.callbacks.Callback):
    """Tells the tf.data pipelines (``data.pipelines``) which epoch starts, so each epoch's
    shuffle and augmentation depend on its index alone: a run resumed at epoch k sees what the
    uninterrupted run saw there, not the first epoch's again. Other datasets are left alone."""

    def __init__(self, *datasets):
        super().__init__()
        self.epochs = [variable for variable in (getattr(data, "pipeline_epoch", None)
                                                 for data in datasets) if variable is not None]

    def on_epoch_begin(self, epoch, logs=None):
        for variable in self.epochs:
            variable.assign(epoch)


def _batches_per_epoch(data) -> int:
    """Batches in one pass of a tf.data pipeline or a PyDataset; -1 when unknown."""
    if hasattr(data, "cardinality"):
        return int(data.cardinality())
    try:
        return len(data)
    except TypeError:
        return -1


def phase_tensorboard(config: TrainingConfig, phase: str, *, reconstruct=None) -> list:
    """The TensorBoard callbacks of one phase when the config asks for them (TensorFlow writes
    the event files, on any backend; it is imported only then)."""
    if config.tensorboard_dir is None:
        return []
    if not backend.tensorflow_installed():
        raise RunError("TensorBoard logs (--tensorboard) are written with TensorFlow, which is "
                       "not installed here: pip install tensorflow, or run without them")
    from keras_latent.paradigms.tensorboard import tensorboard_callbacks

    return tensorboard_callbacks(config.tensorboard_dir, phase, reconstruct=reconstruct)


def warn_if_stuck(history: dict, *, tolerance: float = 1e-3) -> bool:
    """Warn (and return True) when the training loss ended where it started, above it, or
    fell and then rose back more than half-way.

    A learning rate far too high can leave a run at chance without any NaN (SimCLR at
    ln(2N - 1), an autoencoder at the blank image), or undo what the first epochs learned, and
    it would otherwise end quietly. Needs two epochs or more; ``tolerance`` is relative to the
    first epoch's loss."""
    losses = [value for value in history.get("loss", []) if math.isfinite(value)]
    if len(losses) < 2:
        return False
    first, last, lowest = losses[0], losses[-1], min(losses)
    margin = tolerance * abs(first)
    if abs(last - first) <= margin:
        problem = f"did not move over {len(losses)} epochs ({first:.4g} -> {last:.4g})"
    elif last > first:
        problem = f"rose over {len(losses)} epochs ({first:.4g} -> {last:.4g})"
    elif first - lowest > margin and last - lowest > (first - lowest) / 2:
        problem = (f"fell from {first:.4g} to {lowest:.4g}, then rose back to {last:.4g} "
                   f"over {len(losses)} epochs")
    else:
        return False
    warnings.warn(f"the training loss {problem}; the learning rate may be far too high or "
                  "too low", stacklevel=3)
    return True
