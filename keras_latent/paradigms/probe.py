"""Frozen-encoder probes: how much class information a latent space holds (after the autoencoder
and SimCLR), the few-shot variant, and the random-encoder baseline every gain is measured against."""

from __future__ import annotations

import keras
import numpy as np

from keras_latent.data import resolve_augmentation, supervised_dataset
from keras_latent.evaluation.metrics import encode
from keras_latent.losses import SmoothedSparseCrossentropy
from keras_latent.models import Classifier, build_encoder
from keras_latent.models.composite import HEADS
from keras_latent.models.heads import HeadEnsemble
from keras_latent.models.layers import adapt_whitening
from keras_latent.models.saving import build_optimizer
from keras_latent.paradigms.config import TrainingConfig
from keras_latent.paradigms.fitting import (
    TrainingRun,
    architecture_config,
    check_images,
    check_labels,
    make_optimizer,
    phase_tensorboard,
    steps_per_epoch,
    training_scope,
)
from keras_latent.paradigms.callbacks import default_callbacks

#: A probe trains only a small head on fixed codes: more epochs and a higher rate than the encoder.
PROBE_CONFIG = TrainingConfig(epochs=30, batch_size=256, learning_rate=1e-2, weight_decay=0.0)


def labelled_subset(labels, num_labels: int, *, seed: int = 0) -> np.ndarray:
    """Indices of ``num_labels`` examples drawn with a seed, as evenly over classes as possible.

    Few-shot studies want every class present even at N=100; a plain random draw can miss one.
    """
    labels = np.asarray(labels)
    if not 1 <= num_labels <= len(labels):
        raise ValueError(f"num_labels must be in [1, {len(labels)}], got {num_labels}.")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    # Round-robin over classes until num_labels are taken.
    order = [idx for rank in range(max(map(len, per_class)))
             for pool in per_class if rank < len(pool) for idx in [pool[rank]]]
    return np.sort(np.asarray(order[:num_labels]))


def _head(kind, latent_dim, num_classes, head_kwargs):
    """The head named ``kind`` from the same table ``build_classifier`` uses."""
    if kind not in HEADS:
        raise ValueError(f"head must be one of {sorted(HEADS)}, got {kind!r}.")
    return HEADS[kind](latent_dim, num_classes, **(head_kwargs or {}))


def _standardized(head, codes, name="probe_head"):
    """Prefix ``head`` with a Normalization layer adapted to the training codes.

    Raw codes can be large and unevenly scaled (an autoencoder's are not normalised), which
    makes a linear probe slow and learning-rate sensitive; the statistics are saved with the
    model, so the probe needs no separate preprocessing at inference.
    """
    standardize = keras.layers.Normalization(name="standardize_codes")
    standardize.adapt(codes)
    inputs = keras.Input(shape=codes.shape[1:], name="latent")
    return keras.Model(inputs, head(standardize(inputs)), name=name)


def _probe_head(kind, head_kwargs, members, codes, num_classes):
    """One standardized head, or a ``HeadEnsemble`` of ``members`` of them."""
    if not (isinstance(members, int) and not isinstance(members, bool) and members >= 1):
        raise ValueError(f"members must be a positive integer (the number of probe heads), "
                         f"got {members!r}; pass e.g. members=3.")

    def one(name):
        return _standardized(_head(kind, codes.shape[-1], num_classes, head_kwargs), codes, name)

    if members == 1:
        return one("probe_head")
    return HeadEnsemble([one(f"probe_head_{i + 1}") for i in range(members)])


def compile_classifier(model, config: TrainingConfig, steps: int):
    """Compile a classifier (or a probe head) on logits with ``config``'s optimiser, schedule
    over ``steps`` per epoch and label smoothing; the one compile of the classifier, the probe
    and their searches."""
    loss = (SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
            else keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.compile(
        optimizer=make_optimizer(config, steps),
        loss=loss,
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=config.jit_compile,
    )
    return model


def probe_config(run_config: TrainingConfig, base: TrainingConfig | None = None):
    """The probe's own schedule (``base``, default ``PROBE_CONFIG``) with the run's seed,
    verbosity, precision and TensorBoard: one place, so every caller probes the same way."""
    base = base or PROBE_CONFIG
    return base.replace(seed=run_config.seed, verbose=run_config.verbose,
                        precision=run_config.precision, tensorboard=run_config.tensorboard)


def train_probe(encoder, splits, *, head="linear", head_kwargs=None, num_labels=None,
                augment=None, augmented_copies=0, members=1,
                config: TrainingConfig | None = None) -> TrainingRun:
    """Fit a classifier head on the codes of a frozen ``encoder``; return ``Classifier``.

    The encoder runs once, in inference mode, to cache the codes; only the head trains (with the
    best-on-validation weights restored), so the encoder's weights and batch-norm statistics
    cannot change and the probe costs seconds, not an encoder pass per epoch.

    As in Keras' transfer-learning guide, the encoder object itself is frozen
    (``trainable=False``), also inside any model that shares it: save a pretrained model before
    probing, or set ``encoder.trainable = True`` to train it further.

    Args:
        encoder: a trained (or untrained, for the baseline) encoder model.
        splits: the ``DatasetSplits`` to train (``train``), select (``val``) on.
        head: ``"linear"`` or ``"mlp"`` (``head_kwargs`` go to ``mlp_head``).
        num_labels: train on only this many labelled examples (few-shot), drawn with the seed.
        augment, augmented_copies: add the codes of this many augmented copies of the training
            images (e.g. ``"shift_flip"``: shifted and mirrored, labels unchanged) to the probe's
            training set. The encoder stays frozen; the head sees more of what each class looks
            like in code space, for one extra encoder pass per copy.
        members: train this many heads side by side in one ``fit``, each on its own loss, and
            predict with their mean probability (``HeadEnsemble``): less seed-to-seed variance,
            for about the cost of one head per member.
        config: defaults to ``PROBE_CONFIG``.

    Returns:
        A ``TrainingRun`` whose ``codes`` hold the frozen encoder's codes of the val split and,
        unless ``num_labels`` drew a subset, of the train split.
    """
    config = config or PROBE_CONFIG
    check_images(encoder.input_shape, splits)
    check_labels(splits.train.labels, splits.num_classes, "train labels")
    train_z, train_y, val_data, codes = _probe_codes(encoder, splits, num_labels, augment,
                                                     augmented_copies, config.seed)
    has_val = val_data is not None
    with training_scope(config):
        probe_head = _probe_head(head, head_kwargs, members, train_z, splits.num_classes)
        steps = steps_per_epoch(len(train_z), config.batch_size)
        compile_classifier(probe_head, config, steps)
        restore_best = keras.callbacks.EarlyStopping(
            monitor="val_accuracy" if has_val else "accuracy", mode="max",
            patience=config.epochs, restore_best_weights=True,
        )
        history = probe_head.fit(
            train_z, train_y, batch_size=config.batch_size, epochs=config.epochs,
            validation_data=val_data, verbose=config.verbose,
            callbacks=default_callbacks(None, monitors=[restore_best], extra=[
                *phase_tensorboard(config, "probe"), *config.callbacks]),
        )
        classifier = Classifier(encoder, probe_head, freeze_encoder=True)
        # Compiled for evaluate() and reloading only; its loss is the plain cross-entropy.
        compile_classifier(classifier, config.replace(label_smoothing=0.0), steps)
        build_optimizer(classifier)  # so that classifier.save() reloads without a warning
    return TrainingRun(classifier, history.history, codes=codes)


def _probe_codes(encoder, splits, num_labels, augment, augmented_copies, seed):
    """``(train codes, train labels, (val codes, val labels) or None, codes)``: what the probe
    trains on (a few-shot subset, augmented copies added), and the whole splits' codes for the
    evaluation to reuse (``codes``: val, and train unless a subset was drawn)."""
    train_x, train_y = splits.train.images, splits.train.labels
    if num_labels is not None:
        chosen = labelled_subset(train_y, num_labels, seed=seed)
        train_x, train_y = train_x[chosen], train_y[chosen]
    train_z = encode(encoder, train_x)
    val_data = ((encode(encoder, splits.val.images), splits.val.labels) if len(splits.val)
                else None)
    codes = {"val": val_data[0]} if val_data is not None else {}
    if num_labels is None:
        codes["train"] = train_z
    if augmented_copies:
        train_z, train_y = _with_augmented_codes(encoder, splits.name, train_x, train_y, train_z,
                                                 augment, augmented_copies, seed)
    return train_z, train_y, val_data, codes


def _with_augmented_codes(encoder, dataset, images, labels, codes, augment, copies, seed):
    augmenter = resolve_augmentation(dataset, augment, seed=seed)
    if augmenter is None:
        raise ValueError("augmented_copies needs an augmentation: pass augment='shift_flip' "
                         "(or another preset name, a dict of settings or a callable).")
    all_codes, all_labels = [codes], [labels]
    for copy in range(int(copies)):
        # predict() takes the images of (images, labels) batches: any input pipeline works.
        batches = supervised_dataset(images, labels, 1024, augment=augmenter, shuffle=False,
                                     seed=seed + 1 + copy)
        all_codes.append(np.asarray(encoder.predict(batches, verbose=0), dtype="float32"))
        all_labels.append(labels)
    return np.concatenate(all_codes), np.concatenate(all_labels)


def build_random_encoder(splits, architecture, latent_dim, config: TrainingConfig):
    """An untrained encoder of ``architecture`` for ``splits``' images, seeded by ``config``:
    the baseline every trained encoder is measured against. Its whitening stem is fit to the
    training images (label-free, part of the architecture, as the trained encoders have it)."""
    with training_scope(config):
        encoder = build_encoder(splits.image_shape, latent_dim, **architecture_config(architecture))
        adapt_whitening(encoder, splits.train.images)
    return encoder


def train_random_baseline(splits, *, architecture="mnist_conv", latent_dim=128, head="linear",
                          head_kwargs=None, num_labels=None, augment=None, augmented_copies=0,
                          members=1, config: TrainingConfig | None = None) -> TrainingRun:
    """The probe on an untrained encoder of the same architecture: what random features give.
    The probe settings are ``train_probe``'s, so the baseline gets the trained encoders' probe."""
    config = config or PROBE_CONFIG
    encoder = build_random_encoder(splits, architecture, latent_dim, config)
    return train_probe(encoder, splits, head=head, head_kwargs=head_kwargs, num_labels=num_labels,
                       augment=augment, augmented_copies=augmented_copies, members=members,
                       config=config)
