"""NT-Xent, SimCLR's normalised temperature-scaled cross-entropy (Chen et al., 2020).

Each of the 2N embeddings (two views of N images) is an anchor: its positive is the other view
of the same image and every other embedding in the batch is a negative. Written with
``keras.ops`` only, so it runs on any backend, and always in float32 so that a mixed-precision
model's float16 projections do not overflow ``exp(similarity / temperature)``.
"""

import math

import keras
from keras import ops

# Added to an anchor's similarity with itself so it drops out of the softmax; finite (not -inf)
# so that 0 * mask stays 0 and no NaN reaches the gradient.
_SELF_MASK = 1e9


def _check_temperature(temperature):
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be > 0, got {temperature!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    return value


def _check_pair(z_1, z_2):
    if len(z_1.shape) != 2 or len(z_2.shape) != 2:
        raise ValueError(
            "NT-Xent takes two (batch, dim) projection matrices, got shapes "
            f"{tuple(z_1.shape)} and {tuple(z_2.shape)}; flatten the projections first."
        )
    for axis, what in ((0, "batch sizes"), (1, "dimensions")):
        a, b = z_1.shape[axis], z_2.shape[axis]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"NT-Xent needs the two views to match: {what} differ "
                f"({tuple(z_1.shape)} vs {tuple(z_2.shape)}). Pass the projections of two "
                "augmented views of the same images, in the same order."
            )


def _logits_and_targets(z_1, z_2, temperature, negatives):
    """Scaled cosine similarities of the 2N anchors against every candidate.

    Candidates are ``[z_1; z_2; negatives]``: an anchor's self-similarity is masked, its
    positive sits N rows away, and ``negatives`` (e.g. other replicas' projections) only add
    columns to the softmax denominator.
    """
    z_1 = ops.cast(z_1, "float32")
    z_2 = ops.cast(z_2, "float32")
    _check_pair(z_1, z_2)
    if negatives is None and z_1.shape[0] == 1:
        raise ValueError(
            "NT-Xent needs at least 2 images per batch (a single pair has no negatives, so the "
            "loss is always 0); use a batch size of 2 or more."
        )
    anchors = ops.normalize(ops.concatenate([z_1, z_2], axis=0), axis=-1)
    candidates = anchors
    if negatives is not None:
        negatives = ops.normalize(ops.cast(negatives, "float32"), axis=-1)
        candidates = ops.concatenate([anchors, negatives], axis=0)
    logits = ops.matmul(anchors, ops.transpose(candidates)) / temperature

    num_anchors = ops.shape(anchors)[0]
    num_candidates = ops.shape(candidates)[0]
    self_mask = ops.eye(num_anchors, num_candidates, dtype="float32")
    logits = logits - _SELF_MASK * self_mask

    n = ops.shape(z_1)[0]
    rows = ops.arange(num_anchors)
    targets = ops.where(rows < n, rows + n, rows - n)
    return logits, targets


def _per_anchor_losses(z_1, z_2, temperature, negatives):
    logits, targets = _logits_and_targets(z_1, z_2, temperature, negatives)
    positive = ops.take_along_axis(logits, ops.expand_dims(targets, -1), axis=-1)[:, 0]
    return ops.logsumexp(logits, axis=-1) - positive


def nt_xent(z_1, z_2, temperature=0.5, negatives=None):
    """NT-Xent between two views' projections, averaged over the 2N anchors.

    Args:
        z_1, z_2: ``(N, D)`` projections of two augmented views; row ``i`` of each comes from
            the same image. Need not be normalised; any float dtype (computed in float32).
        temperature: softmax temperature, > 0. Lower values weigh hard negatives more.
        negatives: optional ``(M, D)`` extra embeddings that are negatives for every anchor,
            e.g. the projections (both views) held by the other replicas, so that a replica's
            anchors are contrasted against the global batch. ``None`` on a single device.

    Returns:
        A float32 scalar.
    """
    temperature = _check_temperature(temperature)
    return ops.mean(_per_anchor_losses(z_1, z_2, temperature, negatives))


def contrastive_accuracy(z_1, z_2, negatives=None):
    """Fraction of the 2N anchors whose most similar other embedding is their partner view.

    The contrastive task's top-1 accuracy: a cheap sign of whether the projections already
    tell images apart (chance is ``1 / (2N - 1)``).
    """
    logits, targets = _logits_and_targets(z_1, z_2, 1.0, negatives)
    predicted = ops.argmax(logits, axis=-1)
    return ops.mean(ops.cast(ops.equal(predicted, ops.cast(targets, predicted.dtype)), "float32"))


def split_views(y_pred):
    """Split a ``(2N, D)`` batch ``[z_1; z_2]`` into its two ``(N, D)`` views."""
    n = ops.shape(y_pred)[0] // 2
    return y_pred[:n], y_pred[n:]


@keras.saving.register_keras_serializable(package="keras_latent")
class NTXent(keras.losses.Loss):
    """NT-Xent as a ``keras.losses.Loss``, for models that output both views' projections.

    The Loss API has a single ``y_pred``, so the two views travel stacked along the batch
    axis: ``y_pred = concatenate([z_1, z_2], axis=0)`` with shape ``(2N, D)``, row ``i`` and row
    ``N + i`` being the two views of image ``i``. ``y_true`` is ignored (pass anything, e.g.
    zeros). The per-sample loss is the mean of an image's two anchor losses, so the default
    reduction gives exactly ``nt_xent(z_1, z_2)`` and a ``sample_weight`` of shape ``(N,)``
    weighs images.

    Args:
        temperature: softmax temperature, > 0 (SimCLR uses 0.5 for CIFAR-10, 0.1 for large
            batches).
        name, reduction, dtype: as for ``keras.losses.Loss``.

    Example:

    ```python
    loss = NTXent(temperature=0.5)
    value = loss(None, keras.ops.concatenate([z_1, z_2], axis=0))
    ```

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations", ICML 2020 (https://arxiv.org/abs/2002.05709).
    """

    def __init__(self, temperature=0.5, name="nt_xent", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.temperature = _check_temperature(temperature)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # y_true carries no information here; let callers pass None.
        if y_true is None:
            y_true = ops.zeros((1,))
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        if len(y_pred.shape) != 2 or (y_pred.shape[0] is not None and y_pred.shape[0] % 2):
            raise ValueError(
                "NTXent expects y_pred = concatenate([z_1, z_2], axis=0) of shape (2N, D), got "
                f"{tuple(y_pred.shape)}."
            )
        z_1, z_2 = split_views(y_pred)
        per_anchor = _per_anchor_losses(z_1, z_2, self.temperature, None)
        first, second = split_views(per_anchor)
        return 0.5 * (first + second)

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}
