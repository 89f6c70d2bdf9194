"""build_encoder(): image -> (batch, latent_dim) for every kind, shape and knob a tuner may pick."""

import numpy as np
import pytest

from keras_latent.models import ModelConfigError, build_encoder

MNIST, CIFAR = (28, 28, 1), (32, 32, 3)


def images(shape, n=2):
    return np.random.default_rng(0).random((n, *shape), dtype=np.float32)


@pytest.mark.parametrize("shape", [MNIST, CIFAR])
@pytest.mark.parametrize("latent_dim", [2, 16, 128, 300])
@pytest.mark.parametrize("kind, config", [("mlp", {"widths": [32]}), ("conv", {"channels": [4, 8]})])
def test_latent_shape_over_inputs_and_latent_dims(shape, latent_dim, kind, config):
    encoder = build_encoder(shape, latent_dim, kind=kind, **config)
    assert encoder.name == "encoder"
    assert encoder.output_shape == (None, latent_dim)
    assert tuple(encoder(images(shape)).shape) == (2, latent_dim)


@pytest.mark.parametrize("shape", [MNIST, CIFAR])
@pytest.mark.parametrize("base", [4, 16])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_conv_channels_and_kernels(shape, base, kernel):
    encoder = build_encoder(shape, 16, kind="conv", channels=[base, 2 * base, 4 * base], kernel_sizes=kernel, batch_norm=True)
    assert tuple(encoder(images(shape)).shape) == (2, 16)
    convs = [layer for layer in encoder.layers if layer.__class__.__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [base, 2 * base, 4 * base]
    assert {c.kernel_size for c in convs} == {(kernel, kernel)}


@pytest.mark.parametrize(
    "config",
    [
        {"channels": [4, 8], "kernel_sizes": [5, 3], "strides": [2, 1]},
        {"channels": [4, 8], "pooling": "max", "convs_per_stage": 2},
        {"channels": [4, 8], "pooling": "avg", "global_pool": True},
        {"channels": [4, 8, 8], "residual": True, "batch_norm": True},
        {"channels": [4, 8], "dense_widths": [32], "dropout": 0.1},
    ],
)
def test_conv_variants_build_and_run(config):
    for shape in (MNIST, CIFAR):
        encoder = build_encoder(shape, 7, kind="conv", **config)
        assert tuple(encoder(images(shape)).shape) == (2, 7)


def test_pooling_uses_stride_one_convs():
    encoder = build_encoder(MNIST, 4, kind="conv", channels=[4, 8], pooling="max")
    convs = [layer for layer in encoder.layers if layer.__class__.__name__ == "Conv2D"]
    assert all(c.strides == (1, 1) for c in convs)
    assert sum(layer.__class__.__name__ == "MaxPooling2D" for layer in encoder.layers) == 2


def test_mlp_reference_widths():
    encoder = build_encoder(MNIST, 10, kind="mlp", widths=[256, 128])
    dense_units = [layer.units for layer in encoder.layers if layer.__class__.__name__ == "Dense"]
    assert dense_units == [256, 128, 10]
    assert encoder.count_params() == 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10


def test_residual_adds_skip_connections():
    plain = build_encoder(CIFAR, 8, kind="conv", channels=[4, 8])
    residual = build_encoder(CIFAR, 8, kind="conv", channels=[4, 8], residual=True)
    count = lambda m: sum(layer.__class__.__name__ == "Add" for layer in m.layers)  # noqa: E731
    assert count(plain) == 0 and count(residual) == 2


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"latent_dim": 0}, ["latent_dim", "positive integer", "latent_dim=128"]),
        ({"latent_dim": -3, "kind": "mlp"}, ["latent_dim"]),
        ({"channels": []}, ["channels", "non-empty"]),
        ({"channels": [4, 8], "kernel_sizes": [3, 3, 3]}, ["kernel_sizes", "3 entries", "2 stages"]),
        ({"channels": [4] * 6}, ["too small", "reach 0", "strides=1"]),
        ({"kind": "vit"}, ["kind"]),
    ],
)
def test_bad_configs_raise_clear_value_errors(kwargs, words):
    kwargs = {"latent_dim": 8, **kwargs}
    with pytest.raises(ValueError) as info:
        build_encoder(MNIST, **kwargs)
    assert isinstance(info.value, ModelConfigError)
    for word in words:
        assert word in str(info.value)
