"""`build_decoder()`: latent code -> image, mirroring the encoder built from the same config."""

import math

import keras
from keras import layers

from keras_latent.models import blocks
from keras_latent.models.config import check_positive_int, conv_plan, resolve_config

# Under a mixed_float16 policy the image layers still compute in float32: a float16 sigmoid
# saturates and losses on it lose precision (Keras mixed-precision guide). No-op otherwise.
OUTPUT_DTYPE = "float32"


def build_decoder(output_shape, latent_dim=128, *, kind="conv", **config):
    """Build a Functional decoder named "decoder" mapping `(batch, latent_dim)` to images.

    Takes the same `kind` + config as `build_encoder()` and walks it backwards: reversed hidden
    widths / channels, Dense -> Reshape -> one upsampling stage per encoder stage
    (Conv2DTranspose, or UpSampling2D + Conv2D when the encoder pools), cropping after each stage
    to the encoder's spatial size so the output is exactly `output_shape`. The last layer is a
    sigmoid: images are expected in [0, 1].

    Example:
        >>> cfg = get_preset("mnist_conv")
        >>> decoder = build_decoder((28, 28, 1), 16, **cfg)  # pairs with build_encoder(..., **cfg)
    """
    check_positive_int(latent_dim, "latent_dim", 128)
    output_shape = tuple(output_shape)
    cfg = resolve_config(kind, config)
    for dim in output_shape:
        check_positive_int(dim, "output_shape entries", 28)
    z = blocks.input_layer((latent_dim,), "latent")
    if kind == "mlp":
        image = _mlp_decoder(z, output_shape, cfg)
    else:
        image = _conv_decoder(z, output_shape, cfg)
    return keras.Model(z, image, name="decoder")


def _mlp_decoder(x, output_shape, cfg):
    for i, width in enumerate(reversed(cfg["widths"])):
        x = blocks.dense_block(x, width, activation=cfg["activation"], batch_norm=cfg["batch_norm"], name=f"hidden{i + 1}")
    x = layers.Dense(math.prod(output_shape), activation="sigmoid", name="pixels", dtype=OUTPUT_DTYPE)(x)
    return layers.Reshape(output_shape, name="image", dtype=OUTPUT_DTYPE)(x)


def _conv_decoder(x, output_shape, cfg):
    sizes = conv_plan(output_shape, cfg)
    channels, bn, act = cfg["channels"], cfg["batch_norm"], cfg["activation"]
    upsampling = "transpose" if cfg["pooling"] is None else "resize"

    for i, width in enumerate(reversed(cfg["dense_widths"])):
        x = blocks.dense_block(x, width, activation=act, name=f"hidden{i + 1}")
    h, w = sizes[-1]
    x = layers.Dense(h * w * channels[-1], activation=act, name="project")(x)
    x = layers.Reshape((h, w, channels[-1]), name="reshape")(x)

    for i in reversed(range(len(channels))):
        stage, kernel, stride = i + 1, cfg["kernel_sizes"][i], cfg["strides"][i]
        if i == 0:  # output stage: one upsampling conv to the image channels, no BN
            x = blocks.upsample_block(
                x, output_shape[-1], kernel, strides=stride, upsampling=upsampling,
                batch_norm=False, activation=None, name="output",
            )
            x = layers.Activation("sigmoid", name="output_act", dtype=OUTPUT_DTYPE)(x)
            x = blocks.crop_to(x, output_shape[:2], name="output_crop", dtype=OUTPUT_DTYPE)
            break
        filters = channels[i - 1]
        if cfg["residual"]:
            x = blocks.residual_upsample_block(x, filters, kernel, strides=stride, batch_norm=bn, activation=act, name=f"stage{stage}")
        else:
            x = blocks.upsample_block(x, filters, kernel, strides=stride, upsampling=upsampling, batch_norm=bn, activation=act, name=f"stage{stage}_up")
            for rep in range(2, cfg["convs_per_stage"] + 1):
                x = blocks.conv_block(x, filters, kernel, batch_norm=bn, activation=act, name=f"stage{stage}_conv{rep}")
        x = blocks.crop_to(x, sizes[i], name=f"stage{stage}_crop")
    return x
