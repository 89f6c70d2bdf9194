"""Presets are data: fresh copies, overrides, and every one builds a matching encoder/decoder."""

import numpy as np
import pytest

from keras_latent.models import PRESETS, ModelConfigError, build_decoder, build_encoder, get_preset


def test_get_preset_returns_an_independent_copy():
    cfg = get_preset("mnist_conv")
    cfg["channels"].append(999)
    assert 999 not in PRESETS["mnist_conv"]["channels"]
    assert get_preset("mnist_conv") == PRESETS["mnist_conv"]


def test_base_channels_rebuilds_the_pyramid():
    assert get_preset("mnist_conv", base_channels=8)["channels"] == [8, 16, 32]
    assert get_preset("cifar_strong", base_channels=16)["channels"] == [16, 32, 64, 128]


def test_overrides_are_validated_now():
    assert get_preset("mnist_conv", kernel_sizes=5)["kernel_sizes"] == 5
    with pytest.raises(ModelConfigError, match="unknown config key"):
        get_preset("mnist_conv", chanels=[4])
    with pytest.raises(ModelConfigError, match="conv presets only"):
        get_preset("mnist_mlp", base_channels=8)


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(ValueError) as info:
        get_preset("resnet50")
    for name in PRESETS:
        assert name in str(info.value)


def test_benchmark_preset_is_exactly_the_documented_net():
    encoder = build_encoder((32, 32, 3), 128, **get_preset("benchmark"))
    decoder = build_decoder((32, 32, 3), 128, **get_preset("benchmark"))
    enc = [(l.__class__.__name__, getattr(l, "filters", getattr(l, "units", None))) for l in encoder.layers[1:]]
    assert enc == [
        ("Conv2D", 32), ("BatchNormalization", None), ("Activation", None),
        ("Conv2D", 64), ("BatchNormalization", None), ("Activation", None),
        ("Conv2D", 128), ("BatchNormalization", None), ("Activation", None),
        ("Flatten", None), ("Dense", 128),
    ]
    assert all(l.strides == (2, 2) and l.kernel_size == (3, 3) and l.padding == "same"
               for l in encoder.layers if l.__class__.__name__ == "Conv2D")
    dec = [(l.__class__.__name__, getattr(l, "filters", getattr(l, "units", None))) for l in decoder.layers[1:]]
    assert dec == [
        ("Dense", 4 * 4 * 128), ("Reshape", None),
        ("Conv2DTranspose", 64), ("BatchNormalization", None), ("Activation", None),
        ("Conv2DTranspose", 32), ("BatchNormalization", None), ("Activation", None),
        ("Conv2DTranspose", 3), ("Activation", None),
    ]
    assert decoder.layers[-1].activation.__name__ == "sigmoid"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_the_input_shape(name):
    # Shrink the wide presets: the test is about shapes, the 2-core CI is shared.
    cfg = get_preset(name, base_channels=4) if PRESETS[name]["kind"] == "conv" else get_preset(name)
    for shape in ((28, 28, 1), (32, 32, 3)):
        encoder, decoder = build_encoder(shape, 12, **cfg), build_decoder(shape, 12, **cfg)
        x = np.random.default_rng(0).random((2, *shape), dtype=np.float32)
        assert tuple(decoder(encoder(x)).shape) == x.shape
