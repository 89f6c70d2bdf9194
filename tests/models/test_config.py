"""Config checking: defaults, per-stage lists, clear errors, and the stage plan the encoder and
decoder both follow."""

import pytest

from keras_latent.models import config as model_config
from keras_latent.models.config import ModelConfigError


def conv_cfg(**overrides):
    return model_config.resolve_config("conv", overrides)


def test_resolve_config_fills_defaults_and_broadcasts_ints():
    cfg = conv_cfg(channels=[8, 16], kernel_sizes=5, strides=[2, 1])
    assert cfg["kernel_sizes"] == [5, 5]
    assert cfg["strides"] == [2, 1]
    assert cfg["batch_norm"] is model_config.CONV_DEFAULTS["batch_norm"]


def test_conv_plan_follows_same_padding_ceil_sizes():
    plan = model_config.conv_plan((28, 28, 1), conv_cfg(channels=[4, 8, 16], strides=2))
    assert plan == [(28, 28), (14, 14), (7, 7), (4, 4)]
    plan = model_config.conv_plan((32, 20, 3), conv_cfg(channels=[4, 8], strides=[2, 1]))
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
        model_config.resolve_config(kind, config)
    assert isinstance(info.value, ModelConfigError)
    for word in words:
        assert word in str(info.value)


def test_conv_plan_rejects_input_too_small_for_the_strides():
    cfg = conv_cfg(channels=[4] * 6, strides=2)
    with pytest.raises(ModelConfigError, match=r"too small.*6 downsampling stages.*reach 0.*stage 6"):
        model_config.conv_plan((28, 28, 1), cfg)  # 28 -> 14 -> 7 -> 4 -> 2 -> 1 -> ?


def test_conv_plan_rejects_a_flat_input():
    with pytest.raises(ModelConfigError, match=r"\(height, width, channels\)"):
        model_config.conv_plan((784,), conv_cfg())
