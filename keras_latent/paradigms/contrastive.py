"""Contrastive paradigms: SimCLR and the contrastive + denoising hybrid."""

from __future__ import annotations

import math
import warnings

import keras

from keras_latent.data import contrastive_dataset, resolve_augmentation
from keras_latent.models import SimCLR, build_decoder, build_encoder, projection_head
from keras_latent.models.layers import adapt_whitening
from keras_latent.paradigms.callbacks import KNNMonitor
from keras_latent.paradigms.config import TrainingConfig
from keras_latent.paradigms.fitting import (
    TrainingRun,
    architecture_config,
    fit,
    make_optimizer,
    steps_per_epoch,
    training_scope,
)

#: SimCLR wants large batches (more negatives) and a warm-up before the cosine decay.
SIMCLR_CONFIG = TrainingConfig(epochs=20, batch_size=256, learning_rate=1e-3, warmup_epochs=1)


def synchronize_batch_norm(model, strategy) -> int:
    """Under a ``strategy`` of several replicas, make every BatchNormalization in ``model``
    normalise over the global batch; returns how many.

    SimCLR's "global BN" (Chen et al., 2020, sec. 2.2): with per-replica statistics the two
    views of an image share their replica's batch statistics, a shortcut to telling positives
    apart that teaches nothing, and a run on several replicas no longer trains the model one
    device would. One all-reduce per layer and step.
    """
    if getattr(strategy, "num_replicas_in_sync", 1) < 2:  # JAX's DataParallel: global already
        return 0
    layers = [model]
    found = 0
    while layers:
        layer = layers.pop()
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.synchronized = True
            found += 1
        layers.extend(getattr(layer, "layers", []))
    return found


def simclr_batch_config(splits, config: TrainingConfig) -> TrainingConfig:
    """``config``, with the batch shrunk to the whole training split (and a warning) when the
    split is smaller than one batch: SimCLR drops incomplete batches, so it would train on
    nothing. The one rule for the paradigm and its search."""
    if 2 <= len(splits.train) < config.batch_size:
        warnings.warn(f"batch_size {config.batch_size} is larger than the {len(splits.train)} "
                      "training images; using one batch of all of them.", stacklevel=3)
        return config.replace(batch_size=len(splits.train))
    return config


def simclr_steps(splits, config: TrainingConfig) -> int:
    """Steps per epoch of SimCLR's pipeline, which drops the incomplete last batch."""
    return steps_per_epoch(len(splits.train), config.batch_size, drop_remainder=True)


def simclr_datasets(splits, config, augment="simclr", *, strength=1.0, hybrid=False,
                    knn_examples=5000, knn_every=1):
    """``(train, val, monitors)`` for SimCLR: two augmented views per image (and the clean
    image when ``hybrid``), full batches; ``val`` is None with under 2 validation images;
    ``monitors`` holds the k-NN monitor that logs ``val_knn_accuracy`` (none when
    ``knn_examples`` is 0 or there is no validation split)."""
    augmenter = resolve_augmentation(splits.name, augment, strength=strength, seed=config.seed)
    train = contrastive_dataset(splits.train.images, config.batch_size, augment=augmenter,
                                seed=config.seed, with_original=hybrid)
    has_val = len(splits.val) >= 2
    val = (contrastive_dataset(splits.val.images, min(config.batch_size, len(splits.val)),
                               augment=augmenter, seed=config.seed + 1, with_original=hybrid)
           if has_val else None)
    monitors = []
    if knn_examples and has_val:
        monitors.append(KNNMonitor.from_splits(splits, knn_examples, config.seed,
                                               every=knn_every))
    return train, val, monitors


def build_simclr(splits, architecture, latent_dim, *, temperature=0.5, projection_hidden=512,
                 projection_dim=128, reconstruction_weight=0.0, strategy=None,
                 total_steps=None) -> SimCLR:
    """Encoder + projection head (+ the hybrid's decoder) for ``splits``' images: a whitening
    stem is fit to the training images and, under a ``strategy`` of several replicas, batch
    norm uses global statistics. Call inside ``training_scope``."""
    arch = architecture_config(architecture, total_steps=total_steps)
    encoder = build_encoder(splits.image_shape, latent_dim, **arch)
    adapt_whitening(encoder, splits.train.images)
    head = projection_head(latent_dim, hidden_dim=projection_hidden, output_dim=projection_dim)
    decoder = (build_decoder(splits.image_shape, latent_dim, **arch)
               if reconstruction_weight > 0 else None)
    model = SimCLR(encoder, head, temperature=temperature, decoder=decoder,
                   reconstruction_weight=reconstruction_weight)
    synchronize_batch_norm(model, strategy)
    return model


def compile_simclr(model, config: TrainingConfig, steps: int):
    """Compile with ``config``'s optimiser and schedule over ``steps`` per epoch; the loss
    (NT-Xent) and its metrics are the model's own."""
    model.compile(optimizer=make_optimizer(config, steps), jit_compile=config.jit_compile)
    return model


def train_simclr(splits, *, architecture="mnist_conv", latent_dim=128, temperature=0.5,
                 projection_hidden=512, projection_dim=128, augment="simclr", strength=1.0,
                 reconstruction_weight=0.0, knn_examples=5000, knn_every=1,
                 config: TrainingConfig | None = None) -> TrainingRun:
    """Train an encoder with NT-Xent on two augmented views of each image.

    With ``reconstruction_weight > 0`` a decoder is added that reconstructs the clean image from
    an augmented view's code (contrastive + denoising hybrid). Each epoch a k-NN probe on the
    validation split logs ``val_knn_accuracy``; checkpoints keep the best by that number, since
    the contrastive loss cannot rank runs of different temperatures. One keyword per SimCLR
    setting, as the recipes' tables and the tuner name them.

    Args:
        splits: a ``DatasetSplits``.
        architecture: a preset name or config dict for the encoder (and the hybrid's decoder).
        latent_dim: size of the representation that is probed afterwards.
        temperature: NT-Xent temperature (> 0).
        projection_hidden, projection_dim: widths of the projection head.
        augment: a preset name (default ``"simclr"``), a dict of settings or a callable.
        strength: scales the colour-jitter amounts of a preset.
        reconstruction_weight: weight of the denoising reconstruction loss (0 = plain SimCLR).
        knn_examples: training codes the online k-NN monitor looks up (0 turns it off).
        knn_every: run the monitor every this many epochs.
        config: defaults to ``SIMCLR_CONFIG``. Under a strategy with several replicas (GPUs or
            workers) batch norm uses the statistics of the global batch
            (``synchronize_batch_norm``), so the run trains what one device would.
    """
    config = simclr_batch_config(splits, config or SIMCLR_CONFIG)
    steps = simclr_steps(splits, config)
    train, val, monitors = simclr_datasets(
        splits, config, augment, strength=strength, hybrid=reconstruction_weight > 0,
        knn_examples=knn_examples, knn_every=knn_every)
    with training_scope(config):
        model = build_simclr(
            splits, architecture, latent_dim, temperature=temperature,
            projection_hidden=projection_hidden, projection_dim=projection_dim,
            reconstruction_weight=reconstruction_weight, strategy=config.strategy,
            total_steps=config.epochs * steps)
        compile_simclr(model, config, steps)
        monitor = "val_knn_accuracy" if monitors else ("val_loss" if val is not None else "loss")
        history = fit(model, train, val, config, monitor=monitor,
                      mode="max" if monitors else "min", monitors=monitors, phase="simclr")
    warn_if_at_chance(history, config.batch_size, reconstruction_weight=reconstruction_weight)
    return TrainingRun(model, history)


def warn_if_at_chance(history: dict, batch_size: int, *, reconstruction_weight=0.0,
                      tolerance: float = 5e-3) -> bool:
    """Warn (and return True) when SimCLR's last NT-Xent loss is at chance, ln(2N - 1) for
    ``batch_size`` N within ``tolerance`` (relative): the loss of codes that tell no image from
    another, where a learning rate far too high leaves a run that still ends without a NaN."""
    losses, reconstruction = history.get("loss", []), history.get("reconstruction_loss", [])
    if not losses or not math.isfinite(losses[-1]) or batch_size < 2:
        return False
    contrastive = losses[-1] - (reconstruction_weight * reconstruction[-1] if reconstruction
                                else 0.0)
    chance = math.log(2 * batch_size - 1)
    if abs(contrastive - chance) > tolerance * chance:
        return False
    warnings.warn(f"SimCLR's last contrastive loss {contrastive:.4g} is at chance, "
                  f"ln(2N - 1) = {chance:.4g} for batches of {batch_size}: the codes tell no "
                  "image from another; the learning rate may be far too high", stacklevel=3)
    return True
