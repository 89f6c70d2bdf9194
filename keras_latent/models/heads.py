"""Heads that sit on a latent code. Classifier heads output logits (use `from_logits=True`).

Each head's last Dense computes in float32 even under a mixed_float16 policy, so logits and
projections reach the loss at full precision; under float32 this changes nothing.
"""

import math

import keras
from keras import layers, ops

from keras_latent.models import blocks
from keras_latent.models.config import ModelConfigError, check_positive_int


def linear_head(latent_dim, num_classes, logit_scale=None, zero_init=False):
    """A single Dense: the linear probe, which measures how linearly separable the code is.

    ``logit_scale`` (e.g. 1/9, as airbench) multiplies the logits: small initial logits and a
    gentler effective learning rate for the head under the high SGD rates of fast schedules.
    ``zero_init`` starts the kernel at zero, so training starts from uniform predictions (loss
    ln C) instead of the large random logits a fresh code gives, which a short run never
    recovers from.
    """
    check_positive_int(latent_dim, "latent_dim", 128)
    check_positive_int(num_classes, "num_classes", 10)
    z = blocks.input_layer((latent_dim,), "latent")
    logits = layers.Dense(num_classes, name="logits", dtype="float32",
                          kernel_initializer="zeros" if zero_init else "glorot_uniform")(z)
    if logit_scale is not None:
        logits = layers.Rescaling(float(logit_scale), name="logit_scale", dtype="float32")(logits)
    return keras.Model(z, logits, name="head")


def mlp_head(latent_dim, num_classes, widths=(256,), dropout=0.0, batch_norm=False):
    """Hidden Dense layers (ReLU, optional BN / dropout) then a linear Dense to the logits."""
    check_positive_int(latent_dim, "latent_dim", 128)
    check_positive_int(num_classes, "num_classes", 10)
    widths = list(widths)
    for width in widths:
        check_positive_int(width, "widths", "(256,)")
    if not (isinstance(dropout, (int, float)) and 0.0 <= dropout < 1.0):
        raise ModelConfigError(f"dropout must be a float in [0, 1), got {dropout!r}; pass e.g. dropout=0.2")
    z = blocks.input_layer((latent_dim,), "latent")
    x = z
    for i, width in enumerate(widths):
        x = blocks.dense_block(x, width, activation="relu", batch_norm=batch_norm, dropout=dropout, name=f"hidden{i + 1}")
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(z, logits, name="head")


def projection_head(latent_dim, hidden_dim=512, output_dim=128, batch_norm=True):
    """SimCLR's g(.): Dense -> (BN) -> ReLU -> Dense. The contrastive loss acts on its output,
    so the encoder's code (before it) keeps information the loss would otherwise discard
    (Chen et al., 2020, "A Simple Framework for Contrastive Learning of Visual Representations")."""
    check_positive_int(latent_dim, "latent_dim", 128)
    check_positive_int(hidden_dim, "hidden_dim", 512)
    check_positive_int(output_dim, "output_dim", 128)
    z = blocks.input_layer((latent_dim,), "latent")
    x = layers.Dense(hidden_dim, use_bias=not batch_norm, name="hidden")(z)
    x = blocks.norm_act(x, batch_norm=batch_norm, activation="relu", name="hidden")
    projection = layers.Dense(output_dim, name="projection", dtype="float32")(x)
    return keras.Model(z, projection, name="projection_head")


@keras.saving.register_keras_serializable(package="keras_latent")
class HeadEnsemble(keras.Model):
    """Classifier heads trained side by side, each on its own loss; predicts their mean
    probability, as logits.

    Why: one probe's accuracy varies by about a point with its seed (initialisation, dropout).
    Averaging independently trained heads removes much of that variance: on frozen CIFAR-10
    autoencoder codes 3 heads gained ~1 point of test accuracy over one (docs/RESULTS.md). One
    ``fit`` trains all members, in fewer, wider steps than separate fits.

    Each member is trained as if alone (``compute_loss`` averages the members' own losses), not
    through the averaged output, which would couple them into one wide head.

    Args:
        members: models from the same inputs to logits of the same width.
    """

    def __init__(self, members, **kwargs):
        kwargs.setdefault("name", "head_ensemble")
        super().__init__(**kwargs)
        members = list(members)
        if not members:
            raise ModelConfigError("HeadEnsemble needs at least one member head")
        self.members = members
        if all(m.built for m in members):
            self.build(members[0].input_shape)

    def build(self, input_shape):
        for member in self.members:
            if not member.built:
                member.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        member_logits = [m(inputs, training=training) for m in self.members]
        logits = mean_probability_logits(member_logits)
        # Kept for compute_loss, which fit calls with this very output: running the members a
        # second time there made each training step 1.5-2x slower.
        self._last_call = (logits, member_logits)
        return logits

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        # y_pred (the ensemble's logits) feeds the metrics; each member is scored on its own
        # logits, so its gradients do not depend on the other members.
        last = getattr(self, "_last_call", None)
        if last is not None and last[0] is y_pred:
            member_logits = last[1]
        else:  # called with some other prediction: run the members on x
            member_logits = [m(x, training=training) for m in self.members]
        losses = [super(HeadEnsemble, self).compute_loss(x, y, logits, sample_weight,
                                                         training=training)
                  for logits in member_logits]
        return ops.mean(ops.stack(losses))

    def compute_output_shape(self, input_shape):
        return self.members[0].compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(),
                "members": [keras.saving.serialize_keras_object(m) for m in self.members]}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        members = [keras.saving.deserialize_keras_object(m) for m in config.pop("members")]
        return cls(members, **config)


def mean_probability_logits(member_logits):
    """Logits whose softmax is the mean of the members' softmax probabilities (computed in
    float32 as ``logsumexp(log_softmax) - log K``, which cannot overflow)."""
    stacked = ops.stack([ops.cast(logits, "float32") for logits in member_logits])
    return ops.logsumexp(ops.log_softmax(stacked, axis=-1), axis=0) - math.log(len(member_logits))
