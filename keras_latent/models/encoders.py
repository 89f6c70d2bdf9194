"""`build_encoder()`: image -> latent code, from a config dict (see `models/presets.py`)."""

import keras
from keras import layers

from keras_latent.models import blocks
from keras_latent.models.config import check_positive_int, conv_plan, resolve_config
from keras_latent.models.layers import PatchWhitening


def build_encoder(input_shape, latent_dim=128, *, kind="conv", **config):
    """Build a Functional encoder named "encoder" mapping images to `(batch, latent_dim)`.

    Args:
        input_shape: `(H, W, C)`; kind "mlp" accepts any shape (it is flattened).
        latent_dim: size of the code; the last layer is a linear Dense.
        kind: "mlp" (knobs: widths, activation, batch_norm, dropout) or "conv" (knobs: channels,
            kernel_sizes, strides, pooling, batch_norm, activation, residual, convs_per_stage,
            global_pool, dense_widths, dropout, and the fast-CIFAR knobs stem, pool_first,
            pool_padding, bn_momentum, bn_epsilon, bn_bias_scale, conv_init). Defaults live in `config.MLP_DEFAULTS` /
            `config.CONV_DEFAULTS`.

    The same `kind` + config passed to `build_decoder()` builds the mirroring decoder.

    Example:
        >>> encoder = build_encoder((28, 28, 1), 16, **get_preset("mnist_conv"))
    """
    check_positive_int(latent_dim, "latent_dim", 128)
    input_shape = tuple(input_shape)
    cfg = resolve_config(kind, config)
    for dim in input_shape:
        check_positive_int(dim, "input_shape entries", 28)
    inputs = blocks.input_layer(input_shape, "image")
    if kind == "mlp":
        x = _mlp_trunk(inputs, cfg)
    else:
        conv_plan(input_shape, cfg)  # validates that the strides fit the input
        x = _conv_trunk(inputs, cfg)
    # The code is float32 under a mixed policy too: it is what every evaluation reads.
    latent = layers.Dense(latent_dim, name="latent", dtype="float32")(x)
    return keras.Model(inputs, latent, name="encoder")


def _mlp_trunk(x, cfg):
    x = layers.Flatten(name="flatten")(x)
    for i, width in enumerate(cfg["widths"]):
        x = blocks.dense_block(
            x, width, activation=cfg["activation"], batch_norm=cfg["batch_norm"],
            dropout=cfg["dropout"], name=f"hidden{i + 1}",
        )
    return x


def _conv_trunk(x, cfg):
    bn, act = cfg["batch_norm"], cfg["activation"]
    pooled = cfg["pooling"] is not None
    norm = {"momentum": cfg["bn_momentum"], "epsilon": cfg["bn_epsilon"],
            "bias_scale": cfg["bn_bias_scale"]}
    if cfg["stem"] == "whiten":
        x = PatchWhitening(name="whiten")(x)
        x = layers.Activation(act, name="whiten_act")(x)
    for stage, (filters, kernel, stride) in enumerate(
        zip(cfg["channels"], cfg["kernel_sizes"], cfg["strides"]), start=1
    ):
        conv_stride = 1 if pooled else stride
        pool = None
        if pooled and stride > 1:
            kind = layers.MaxPooling2D if cfg["pooling"] == "max" else layers.AveragePooling2D
            pool = kind(stride, padding=cfg["pool_padding"], name=f"stage{stage}_pool")
        if cfg["residual"]:
            x = blocks.residual_block(x, filters, kernel, strides=conv_stride, batch_norm=bn, activation=act, name=f"stage{stage}")
        else:
            for rep in range(1, cfg["convs_per_stage"] + 1):
                x = blocks.conv_block(
                    x, filters, kernel, strides=conv_stride if rep == 1 else 1,
                    batch_norm=bn, activation=act, name=f"stage{stage}_conv{rep}",
                    init=cfg["conv_init"], use_bias=not (bn and cfg["pool_first"]),
                    pool=pool if (rep == 1 and cfg["pool_first"]) else None, **norm,
                )
        if pool is not None and not cfg["pool_first"]:
            x = pool(x)
    if cfg["global_pool"]:
        pool = layers.GlobalMaxPooling2D if cfg["global_pool"] == "max" else layers.GlobalAveragePooling2D
        x = pool(name="global_pool")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
    if cfg["dropout"]:
        x = layers.Dropout(cfg["dropout"], name="trunk_dropout")(x)
    for i, width in enumerate(cfg["dense_widths"]):
        x = blocks.dense_block(x, width, activation=act, dropout=cfg["dropout"], name=f"hidden{i + 1}")
    return x
