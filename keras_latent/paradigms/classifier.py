"""Classification-guided encoder: encoder and head trained jointly on labels."""

from __future__ import annotations

from keras_latent.data import resolve_augmentation, supervised_dataset
from keras_latent.models import build_classifier
from keras_latent.models.layers import adapt_whitening
from keras_latent.paradigms.config import TrainingConfig
from keras_latent.paradigms.fitting import (
    TrainingRun,
    architecture_config,
    check_labels,
    fit,
    steps_per_epoch,
    training_scope,
)
from keras_latent.paradigms.probe import compile_classifier, labelled_subset

#: airbench94's optimisation for the ``cifar_fast`` encoder, in Keras terms: Nesterov SGD at
#: momentum 0.85 with batch 1024, a triangular schedule peaking at 23 % of the run, label
#: smoothing 0.2 and lookahead (decay rising to 0.95 ** 5 every 5 steps). airbench's summed
#: loss at lr 11.5 / 1024 / (1 + 1 / (1 - 0.85)) per example is a mean-loss rate of 1.5; its
#: weight decay 0.0153 per 1024 examples, amplified 1 / (1 - momentum) by the momentum buffer,
#: is a decoupled 0.0089 at that rate. Use with ``head_kwargs={"logit_scale": 1 / 9}``.
FAST_CLASSIFIER_CONFIG = TrainingConfig(
    epochs=10, batch_size=1024, optimizer="sgd", learning_rate=1.5, momentum=0.85,
    weight_decay=0.0089, schedule="triangular", label_smoothing=0.2, lookahead=0.95,
)


def training_examples(splits, num_labels=None, seed=0):
    """The labelled training images and labels: all of them, or ``num_labels`` drawn with
    ``seed`` (few-shot)."""
    images, labels = splits.train.images, splits.train.labels
    if num_labels is not None:
        chosen = labelled_subset(labels, num_labels, seed=seed)
        images, labels = images[chosen], labels[chosen]
    return images, labels


def classifier_datasets(splits, config, augment="light", num_labels=None):
    """``(train, val)`` supervised pipelines (``val`` is None without a validation split);
    ``augment`` as ``data.resolve_augmentation`` takes it."""
    check_labels(splits.train.labels, splits.num_classes, "train labels")
    check_labels(splits.val.labels, splits.num_classes, "validation labels")
    images, labels = training_examples(splits, num_labels, config.seed)
    augmenter = resolve_augmentation(splits.name, augment, seed=config.seed)
    train = supervised_dataset(images, labels, config.batch_size, augment=augmenter,
                               seed=config.seed)
    val = (supervised_dataset(splits.val.images, splits.val.labels, config.batch_size,
                              shuffle=False) if len(splits.val) else None)
    return train, val


def build_classification_model(splits, architecture, latent_dim, *, head="linear",
                               head_kwargs=None, images=None, total_steps=None):
    """Encoder + head, trainable together, for ``splits``' images; a whitening stem is fit
    to ``images`` (default: the training split). Call inside ``training_scope``."""
    images = splits.train.images if images is None else images
    model = build_classifier(
        splits.image_shape, splits.num_classes, latent_dim=latent_dim, head=head,
        freeze_encoder=False, head_kwargs=head_kwargs,
        **architecture_config(architecture, total_steps=total_steps),
    )
    adapt_whitening(model, images)
    return model


def train_classifier(splits, *, architecture="mnist_conv", latent_dim=128, head="linear",
                     head_kwargs=None, augment="light", num_labels=None,
                     config: TrainingConfig | None = None) -> TrainingRun:
    """Train encoder + head with cross-entropy; no decoder.

    Args:
        splits: a ``DatasetSplits``.
        architecture: a preset name or config dict for the encoder.
        latent_dim: size of the code the head reads (the representation that is compared).
        head: ``"linear"`` or ``"mlp"``; ``head_kwargs`` go to ``mlp_head``.
        augment: ``None``, a preset name (default ``"light"``), a dict of settings or a
            callable (see ``data.resolve_augmentation``).
        num_labels: train on only this many labelled examples (few-shot), drawn with the seed.
        config: optimisation and bookkeeping settings.
    """
    config = config or TrainingConfig()
    train, val = classifier_datasets(splits, config, augment, num_labels)
    images, _ = training_examples(splits, num_labels, config.seed)
    steps = steps_per_epoch(len(images), config.batch_size)
    with training_scope(config):
        model = build_classification_model(
            splits, architecture, latent_dim, head=head, head_kwargs=head_kwargs,
            images=images, total_steps=config.epochs * steps)
        compile_classifier(model, config, steps)
        history = fit(model, train, val, config,
                      monitor="val_accuracy" if val is not None else "accuracy", mode="max",
                      phase="classifier")
    return TrainingRun(model, history)
