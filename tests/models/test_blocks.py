"""Config checking and the shared blocks: the stage plan the encoder and decoder both follow."""

import keras
import pytest

from keras_latent.models import blocks
from keras_latent.models.blocks import ModelConfigError


def conv_cfg(**overrides):
    return blocks.resolve_config("conv", overrides)


def test_resolve_config_fills_defaults_and_broadcasts_ints():
    cfg = conv_cfg(channels=[8, 16], kernel_sizes=5, strides=[2, 1])
    assert cfg["kernel_sizes"] == [5, 5]
    assert cfg["strides"] == [2, 1]
    assert cfg["batch_norm"] is blocks.CONV_DEFAULTS["batch_norm"]


def test_conv_plan_follows_same_padding_ceil_sizes():
    plan = blocks.conv_plan((28, 28, 1), conv_cfg(channels=[4, 8, 16], strides=2))
    assert plan == [(28, 28), (14, 14), (7, 7), (4, 4)]
    plan = blocks.conv_plan((32, 20, 3), conv_cfg(channels=[4, 8], strides=[2, 1]))
    assert plan == [(32, 20), (16, 10), (16, 10)]


@pytest.mark.parametrize(
    "kind, config, words",
    [
        ("conv", {"channels": []}, ["channels", "non-empty"]),
        ("conv", {"channels": [8, 16, 32], "kernel_sizes": [3, 3]}, ["kernel_sizes", "2 entries", "3 stages"]),
        ("conv", {"channels": [8, 16], "strides": [2, 2, 2]}, ["strides", "3 entries"]),
        ("conv", {"channels": [8, 0]}, ["channels", "positive integer"]),
        ("conv", {"pooling": "median"}, ["pooling", "'max'"]),
        ("conv", {"dropout": 1.5}, ["dropout", "[0, 1)"]),
        ("conv", {"chanels": [8]}, ["unknown config key", "chanels", "channels"]),
        ("mlp", {"widths": [64, -1]}, ["widths", "positive integer"]),
        ("transformer", {}, ["kind", "'conv'", "'mlp'"]),
    ],
)
def test_bad_configs_name_the_argument(kind, config, words):
    with pytest.raises(ValueError) as info:
        blocks.resolve_config(kind, config)
    assert isinstance(info.value, ModelConfigError)
    for word in words:
        assert word in str(info.value)


def test_conv_plan_rejects_input_too_small_for_the_strides():
    cfg = conv_cfg(channels=[4] * 6, strides=2)
    with pytest.raises(ModelConfigError, match=r"too small.*6 downsampling stages.*reach 0.*stage 6"):
        blocks.conv_plan((28, 28, 1), cfg)  # 28 -> 14 -> 7 -> 4 -> 2 -> 1 -> ?


def test_conv_plan_rejects_a_flat_input():
    with pytest.raises(ModelConfigError, match=r"\(height, width, channels\)"):
        blocks.conv_plan((784,), conv_cfg())


@pytest.mark.parametrize("strides, filters", [(1, 8), (2, 8), (1, 3)])
def test_residual_block_shapes_and_projection(strides, filters):
    x = keras.Input((9, 9, 3))
    y = blocks.residual_block(x, filters, 3, strides=strides, batch_norm=True, name="r")
    assert tuple(y.shape) == (None, -(-9 // strides), -(-9 // strides), filters)
    model = keras.Model(x, y)
    has_projection = any(layer.name == "r_proj" for layer in model.layers)
    assert has_projection == (strides != 1 or filters != 3)


def test_upsample_and_crop_restore_odd_sizes():
    x = keras.Input((4, 4, 8))
    y = blocks.upsample_block(x, 5, 3, strides=2, name="up")  # 8x8
    y = blocks.crop_to(y, (7, 7), name="crop")
    assert tuple(y.shape) == (None, 7, 7, 5)
    y2 = blocks.upsample_block(x, 5, 3, strides=2, upsampling="resize", name="up2")
    assert tuple(y2.shape) == (None, 8, 8, 5)
