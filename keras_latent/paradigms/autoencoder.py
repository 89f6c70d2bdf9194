"""Reconstruction paradigms: the self-supervised autoencoder and a decoder
trained on a frozen encoder (to ask what another encoder's latent space keeps)."""

from __future__ import annotations

import keras
import numpy as np

from keras_latent.data import reconstruction_dataset, resolve_augmentation
from keras_latent.models import Autoencoder, build_decoder, build_encoder
from keras_latent.models.layers import adapt_whitening
from keras_latent.paradigms.config import TrainingConfig
from keras_latent.paradigms.fitting import (
    TrainingRun,
    architecture_config,
    check_images,
    fit,
    make_optimizer,
    steps_per_epoch,
    training_scope,
)

RECONSTRUCTION_LOSSES = {"mae": "mean_absolute_error", "mse": "mean_squared_error"}


def _reconstruction_loss(loss):
    if loss not in RECONSTRUCTION_LOSSES:
        raise ValueError(f"loss must be one of {sorted(RECONSTRUCTION_LOSSES)}, got {loss!r}.")
    return RECONSTRUCTION_LOSSES[loss]


def compile_autoencoder(model, config: TrainingConfig, steps: int, loss="mae"):
    """Compile for reconstruction with ``config``'s optimiser and schedule over ``steps`` per
    epoch; MAE is always reported (the usual figure to compare with)."""
    model.compile(
        optimizer=make_optimizer(config, steps),
        loss=_reconstruction_loss(loss),
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
        jit_compile=config.jit_compile,
    )
    return model


def start_at_mean_intensity(decoder, images):
    """Set the output layer's bias so an untrained decoder emits the mean pixel intensity.

    A sigmoid output starts at 0.5 everywhere; on mostly dark images (MNIST's mean is 0.13) the
    first hundreds of steps only learn to darken the background, and under an L1 loss that phase
    can end in the blank-image optimum. Starting at the data's mean skips it.
    """
    biased = [layer for layer in decoder.layers if getattr(layer, "bias", None) is not None]
    if not biased:
        return
    bias = biased[-1].bias  # layers are in topological order: the last one feeds the output
    mean = np.mean(images, axis=tuple(range(np.ndim(images) - 1)), dtype="float64") / 255.0
    mean = np.clip(mean, 0.01, 0.99)
    logit = np.log(mean / (1.0 - mean))
    bias.assign(np.broadcast_to(logit if bias.shape[0] == mean.shape[0] else logit.mean(),
                                bias.shape).astype(bias.dtype))


def autoencoder_datasets(splits, config, augment=None):
    """``(train, val)`` reconstruction pipelines (``val`` is None without a validation split).

    ``augment`` corrupts the training inputs only (the targets stay clean): a denoising
    autoencoder; see ``data.resolve_augmentation`` for what it accepts."""
    augmenter = resolve_augmentation(splits.name, augment, seed=config.seed)
    train = reconstruction_dataset(
        splits.train.images, config.batch_size, augment=augmenter, seed=config.seed
    )
    val = (reconstruction_dataset(splits.val.images, config.batch_size, shuffle=False)
           if len(splits.val) else None)
    return train, val


def build_autoencoder(splits, architecture, latent_dim, *, total_steps=None) -> Autoencoder:
    """Encoder + mirrored decoder for ``splits``' images, ready to compile: a whitening stem
    is fit to the training images and the decoder starts at their mean intensity. Call inside
    ``training_scope``; ``total_steps`` sizes the schedules some presets carry."""
    arch = architecture_config(architecture, total_steps=total_steps)
    encoder = build_encoder(splits.image_shape, latent_dim, **arch)
    adapt_whitening(encoder, splits.train.images)
    decoder = build_decoder(splits.image_shape, latent_dim, **arch)
    start_at_mean_intensity(decoder, splits.train.images)
    return Autoencoder(encoder, decoder)


def _fit_reconstruction(autoencoder, splits, config, loss, augment, phase):
    """Compile with the chosen loss and fit on the reconstruction pipeline."""
    check_images(autoencoder.encoder.input_shape, splits)
    train, val = autoencoder_datasets(splits, config, augment)
    steps = steps_per_epoch(len(splits.train), config.batch_size)
    compile_autoencoder(autoencoder, config, steps, loss)
    return fit(autoencoder, train, val, config,
               monitor="val_loss" if val is not None else "loss", mode="min", phase=phase,
               reconstruct=splits.val.images)


def train_autoencoder(splits, *, architecture="mnist_conv", latent_dim=128, loss="mae",
                      augment=None, config: TrainingConfig | None = None) -> TrainingRun:
    """Train encoder + decoder to reconstruct their input; the encoder is then probed frozen.

    Args:
        splits: a ``DatasetSplits`` from ``keras_latent.data.load_dataset``.
        architecture: a preset name (see ``keras_latent.models.PRESETS``) or a config dict.
        latent_dim: size of the code between encoder and decoder.
        loss: ``"mae"`` (default, the figure reports compare) or ``"mse"``.
        augment: ``None``, a preset name (``"light"``), a dict of settings or a callable
            (see ``data.resolve_augmentation``); it corrupts the inputs only (denoising).
        config: optimisation and bookkeeping settings.
    """
    config = config or TrainingConfig()
    total_steps = config.epochs * steps_per_epoch(len(splits.train), config.batch_size)
    with training_scope(config):
        autoencoder = build_autoencoder(splits, architecture, latent_dim, total_steps=total_steps)
        history = _fit_reconstruction(autoencoder, splits, config, loss, augment,
                                      "autoencoder")
    return TrainingRun(autoencoder, history)


def train_decoder(encoder, splits, *, architecture="mnist_conv", loss="mae",
                  config: TrainingConfig | None = None) -> TrainingRun:
    """Train only a decoder on a frozen ``encoder`` (e.g. a classification-guided one).

    Comparing its reconstruction MAE with the autoencoder's shows how much of the image each
    latent space keeps. The encoder's weights and batch-norm statistics do not change.
    """
    config = config or TrainingConfig()
    arch = architecture_config(architecture, total_steps=config.epochs * steps_per_epoch(
        len(splits.train), config.batch_size))
    latent_dim = encoder.output_shape[-1]
    with training_scope(config):
        encoder.trainable = False  # Keras 3 also runs frozen BatchNorm in inference mode.
        decoder = build_decoder(splits.image_shape, latent_dim, **arch)
        start_at_mean_intensity(decoder, splits.train.images)
        autoencoder = Autoencoder(encoder, decoder)
        history = _fit_reconstruction(autoencoder, splits, config, loss, augment=None,
                                      phase="decoder")
    return TrainingRun(autoencoder, history)
