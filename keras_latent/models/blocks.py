"""The building blocks shared by encoders and decoders: plain functions on Keras tensors
(keras-hub style), usable in any Functional model. Configs and their checks: `config.py`."""

import keras
from keras import layers

from keras_latent.models.layers import PartialDirac, ScaledBias


# ---------------------------------------------------------------------------------------------
# Blocks: functions from a tensor to a tensor.
# ---------------------------------------------------------------------------------------------


def norm_act(x, *, batch_norm, activation, name, momentum=0.99, epsilon=1e-3, bias_scale=None):
    """(BN) -> activation. ``bias_scale``: BN without affine, then a faster-learning bias."""
    if batch_norm:
        affine = bias_scale is None
        x = layers.BatchNormalization(momentum=momentum, epsilon=epsilon, center=affine,
                                      scale=affine, name=f"{name}_bn")(x)
        if not affine:
            x = ScaledBias(bias_scale, name=f"{name}_bias")(x)
    if activation:
        x = layers.Activation(activation, name=f"{name}_act")(x)
    return x


def dense_block(x, units, *, activation="relu", batch_norm=False, dropout=0.0, name="dense"):
    """Dense -> (BN) -> activation -> (Dropout)."""
    x = layers.Dense(units, name=name)(x)
    x = norm_act(x, batch_norm=batch_norm, activation=activation, name=name)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return x


def conv_block(x, filters, kernel_size, *, strides=1, batch_norm=False, activation="relu", name="conv",
               init="glorot_uniform", use_bias=True, pool=None, **norm):
    """Conv2D (same padding) -> (``pool``, a pooling layer) -> (BN) -> activation.

    ``use_bias=False`` saves the bias a following BN cancels; ``norm`` goes to ``norm_act``.
    One argument per knob of a preset's conv stage (the presets are plain dicts of them).
    """
    x = layers.Conv2D(filters, kernel_size, strides=strides, padding="same", use_bias=use_bias,
                      kernel_initializer=PartialDirac() if init == "dirac" else init, name=name)(x)
    if pool is not None:
        x = pool(x)
    return norm_act(x, batch_norm=batch_norm, activation=activation, name=name, **norm)


def residual_block(x, filters, kernel_size, *, strides=1, batch_norm=False, activation="relu", name="res"):
    """Basic ResNet block: two convs plus a shortcut, projected by a 1x1 conv when shapes differ."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, padding="same", name=f"{name}_proj")(x)
        if batch_norm:
            shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = conv_block(x, filters, kernel_size, strides=strides, batch_norm=batch_norm, activation=activation, name=f"{name}_conv1")
    y = conv_block(y, filters, kernel_size, batch_norm=batch_norm, activation=None, name=f"{name}_conv2")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation(activation, name=f"{name}_out")(y)


def upsample_block(x, filters, kernel_size, *, strides=2, upsampling="transpose", batch_norm=False, activation="relu", name="up"):
    """Undo one downsampling: Conv2DTranspose, or UpSampling2D + Conv2D (mirrors pooled encoders)."""
    if upsampling == "transpose":
        x = layers.Conv2DTranspose(filters, kernel_size, strides=strides, padding="same", name=name)(x)
    else:
        if strides > 1:
            x = layers.UpSampling2D(strides, name=f"{name}_upsample")(x)
        x = layers.Conv2D(filters, kernel_size, padding="same", name=name)(x)
    return norm_act(x, batch_norm=batch_norm, activation=activation, name=name)


def residual_upsample_block(x, filters, kernel_size, *, strides=2, batch_norm=False, activation="relu", name="res_up"):
    """The decoder's mirror of `residual_block`: a transposed conv path plus a projected shortcut."""
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2DTranspose(filters, 1, strides=strides, padding="same", name=f"{name}_proj")(x)
        if batch_norm:
            shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = upsample_block(x, filters, kernel_size, strides=strides, batch_norm=batch_norm, activation=activation, name=f"{name}_conv1")
    y = conv_block(y, filters, kernel_size, batch_norm=batch_norm, activation=None, name=f"{name}_conv2")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation(activation, name=f"{name}_out")(y)


def crop_to(x, size, name, dtype=None):
    """Crop (H, W) to `size`, or zero-pad it up to `size` where it is smaller.

    Upsampling by s gives s*ceil(n/s) >= n (crop); floored pooling or a valid stem in the
    encoder leaves s*floor(n/s) <= n (pad by the missing rows and columns).
    """
    h, w = x.shape[1], x.shape[2]
    dh, dw = h - size[0], w - size[1]
    if dh > 0 or dw > 0:
        ch, cw = max(dh, 0), max(dw, 0)
        x = layers.Cropping2D(((ch // 2, ch - ch // 2), (cw // 2, cw - cw // 2)), name=name, dtype=dtype)(x)
    if dh < 0 or dw < 0:
        ph, pw = max(-dh, 0), max(-dw, 0)
        x = layers.ZeroPadding2D(((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2)),
                                 name=f"{name}_pad", dtype=dtype)(x)
    return x


def input_layer(shape, name):
    return keras.Input(shape=tuple(shape), name=name)
