"""build_decoder(): latent -> an image of EXACTLY the requested shape, mirroring the encoder."""

import numpy as np
import pytest

from keras_latent.models import ModelConfigError, build_decoder, build_encoder

MNIST, CIFAR = (28, 28, 1), (32, 32, 3)


def codes(latent_dim, n=2):
    return np.random.default_rng(0).normal(size=(n, latent_dim)).astype("float32")


@pytest.mark.parametrize("shape", [MNIST, CIFAR])
@pytest.mark.parametrize("latent_dim", [2, 16, 128, 300])
@pytest.mark.parametrize("kind, config", [("mlp", {"widths": [32]}), ("conv", {"channels": [4, 8]})])
def test_output_shape_over_shapes_and_latent_dims(shape, latent_dim, kind, config):
    decoder = build_decoder(shape, latent_dim, kind=kind, **config)
    assert decoder.name == "decoder"
    assert decoder.input_shape == (None, latent_dim)
    out = np.asarray(decoder(codes(latent_dim)))
    assert out.shape == (2, *shape)
    assert out.min() >= 0.0 and out.max() <= 1.0  # sigmoid output, images in [0, 1]


@pytest.mark.parametrize("shape", [MNIST, CIFAR, (27, 31, 2)])
@pytest.mark.parametrize("base", [4, 16])
@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_conv_mirror_is_exact_for_odd_sizes(shape, base, kernel):
    cfg = {"kind": "conv", "channels": [base, 2 * base, 4 * base], "kernel_sizes": kernel, "batch_norm": True}
    decoder = build_decoder(shape, 16, **cfg)
    assert decoder.output_shape == (None, *shape)
    assert tuple(decoder(codes(16)).shape) == (2, *shape)


def test_decoder_mirrors_encoder_channels_in_reverse():
    cfg = {"kind": "conv", "channels": [4, 8, 16], "kernel_sizes": [3, 5, 7]}
    encoder, decoder = build_encoder(MNIST, 6, **cfg), build_decoder(MNIST, 6, **cfg)
    # The spatial size the decoder starts from is the encoder's last feature map (28->14->7->4).
    reshape = decoder.get_layer("reshape")
    assert reshape.output.shape[1:] == encoder.get_layer("stage3_conv1_act").output.shape[1:] == (4, 4, 16)
    ups = [layer for layer in decoder.layers if layer.__class__.__name__ == "Conv2DTranspose"]
    assert [u.filters for u in ups] == [8, 4, 1]
    assert [u.kernel_size for u in ups] == [(7, 7), (5, 5), (3, 3)]


@pytest.mark.parametrize(
    "config",
    [
        {"channels": [4, 8], "pooling": "max", "convs_per_stage": 2},
        {"channels": [4, 8, 8], "residual": True, "batch_norm": True},
        {"channels": [4, 8], "strides": [2, 1], "dense_widths": [32], "global_pool": True},
    ],
)
def test_conv_variants_decode_to_the_input_shape(config):
    for shape in (MNIST, CIFAR):
        decoder = build_decoder(shape, 5, kind="conv", **config)
        assert tuple(decoder(codes(5)).shape) == (2, *shape)


def test_pooled_encoder_gets_upsampling_decoder():
    decoder = build_decoder(MNIST, 5, kind="conv", channels=[4, 8], pooling="max")
    names = {layer.__class__.__name__ for layer in decoder.layers}
    assert "UpSampling2D" in names and "Conv2DTranspose" not in names


def test_bad_decoder_configs_raise():
    with pytest.raises(ModelConfigError, match="latent_dim"):
        build_decoder(MNIST, 0)
    with pytest.raises(ModelConfigError, match="too small"):
        build_decoder((4, 4, 1), 8, channels=[4, 4, 4, 4])


@pytest.mark.parametrize("kind, config", [("mlp", {"widths": [8]}), ("conv", {"channels": [4, 8], "batch_norm": True})])
def test_images_come_out_float32_under_mixed_precision(kind, config):
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        decoder = build_decoder(MNIST, 4, kind=kind, **config)
        hidden = decoder.get_layer("hidden1" if kind == "mlp" else "stage2_up")
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert hidden.compute_dtype == "float16"  # the body does run in half precision
    assert keras.backend.standardize_dtype(decoder(codes(4)).dtype) == "float32"


def test_fast_preset_decoder_pads_back_to_the_image_size():
    from keras_latent.models import build_autoencoder, get_preset
    from keras_latent.models.config import conv_plan, resolve_config

    config = get_preset("cifar_fast", channels=[8, 8, 8])
    kind = config.pop("kind")
    assert conv_plan((32, 32, 3), resolve_config(kind, config)) == [(31, 31), (15, 15), (7, 7), (3, 3)]
    autoencoder = build_autoencoder((32, 32, 3), 16, **get_preset("cifar_fast", channels=[8, 8, 8]))
    assert autoencoder.decoder.output_shape == (None, 32, 32, 3)
