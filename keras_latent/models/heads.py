"""Heads that sit on a latent code. Classifier heads output logits (use `from_logits=True`).

Each head's last Dense computes in float32 even under a mixed_float16 policy, so logits and
projections reach the loss at full precision; under float32 this changes nothing.
"""

import keras
from keras import layers

from keras_latent.models import blocks
from keras_latent.models.config import ModelConfigError, check_positive_int


def linear_head(latent_dim, num_classes, logit_scale=None):
    """A single Dense: the linear probe, which measures how linearly separable the code is.

    ``logit_scale`` (e.g. 1/9, as airbench) multiplies the logits: small initial logits and a
    gentler effective learning rate for the head under the high SGD rates of fast schedules.
    """
    check_positive_int(latent_dim, "latent_dim", 128)
    check_positive_int(num_classes, "num_classes", 10)
    z = blocks.input_layer((latent_dim,), "latent")
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(z)
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
