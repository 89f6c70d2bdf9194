"""The fast-CIFAR layers: whitening filters come from the data and stay frozen, identity
initialisation passes inputs through, scaled biases learn faster, all reload."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_latent.models import build_classifier, get_preset
from keras_latent.models.layers import PartialDirac, PatchWhitening, ScaledBias, adapt_whitening
from tests.saving_utils import assert_reloads_in_fresh_process


@pytest.fixture(scope="module")
def cifar_images(data_dir):
    return np.load(data_dir / "cifar10.npz")["x_train"][:500]


@pytest.fixture(scope="module")
def whitening(cifar_images):
    layer = PatchWhitening(patch_size=2, eps=5e-4)
    layer.adapt(cifar_images)
    return layer


def _patches(images):
    x = images.astype("float64") / 255.0
    windows = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(1, 2))
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)


def test_whitening_filters_are_orthogonal_eigenvectors_and_their_negatives(whitening, cifar_images):
    kernel = np.asarray(whitening.kernel).reshape(12, 24).astype("float64")
    filters, negatives = kernel[:, :12], kernel[:, 12:]
    np.testing.assert_allclose(negatives, -filters)
    gram = filters.T @ filters  # orthogonal columns: diagonal gram matrix
    np.testing.assert_allclose(gram - np.diag(np.diag(gram)), 0.0, atol=1e-3 * gram.max())
    # Rescaled to unit length they are orthonormal eigenvectors of the patch covariance.
    unit = filters / np.linalg.norm(filters, axis=0)
    np.testing.assert_allclose(unit.T @ unit, np.eye(12), atol=1e-4)
    covariance = np.cov(_patches(cifar_images), rowvar=False)
    rotated = unit.T @ covariance @ unit
    np.testing.assert_allclose(rotated - np.diag(np.diag(rotated)), 0.0, atol=1e-6)
    assert np.all(np.diff(np.diag(rotated)) <= 1e-12)  # largest variance first


def test_whitened_patches_have_identity_covariance_and_zero_mean(whitening, cifar_images):
    out = np.asarray(whitening(cifar_images.astype("float32") / 255.0))[..., :12].reshape(-1, 12)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-3)
    covariance = np.cov(out, rowvar=False)
    # Variance lambda / (lambda + eps): ~1 for the strong directions, less for the faint ones.
    np.testing.assert_allclose(np.diag(covariance)[:8], 1.0, atol=0.05)
    np.testing.assert_allclose(covariance - np.diag(np.diag(covariance)), 0.0, atol=0.02)


def test_whitening_filters_are_frozen_during_training(cifar_images):
    model = build_classifier((32, 32, 3), 10, latent_dim=8, **get_preset("cifar_fast", channels=[8, 8, 8]))
    assert adapt_whitening(model, cifar_images) == 1
    layer = model.encoder.get_layer("whiten")
    trainable = {id(weight) for weight in model.trainable_weights}
    assert id(layer.kernel) not in trainable and id(layer.bias) in trainable
    before = np.array(layer.kernel)
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(cifar_images[:64].astype("float32") / 255.0, np.arange(64) % 10, epochs=1, verbose=0)
    np.testing.assert_array_equal(np.array(layer.kernel), before)


def test_partial_dirac_passes_the_first_channels_through():
    kernel = PartialDirac(seed=0)((3, 3, 4, 6))
    x = np.random.default_rng(0).random((1, 5, 5, 4)).astype("float32")
    y = np.asarray(keras.ops.conv(x, kernel, padding="same"))
    np.testing.assert_allclose(y[..., :4], x, atol=1e-6)
    assert np.abs(y[..., 4:]).sum() > 0  # the extra filters are random


def test_scaled_bias_learns_scale_squared_faster():
    steps = {}
    for scale in (1.0, 8.0):
        layer = ScaledBias(scale)
        layer.build((None, 2))
        with tf.GradientTape() as tape:
            loss = keras.ops.sum(layer(np.ones((1, 2), "float32")))
        gradient = tape.gradient(loss, layer.bias)
        steps[scale] = scale * np.asarray(gradient)  # change of the output per unit lr
    np.testing.assert_allclose(steps[8.0], 64.0 * steps[1.0])


def test_fast_encoder_with_whitening_reloads_in_a_fresh_process(cifar_images, tmp_path):
    model = build_classifier((32, 32, 3), 10, latent_dim=8, **get_preset("cifar_fast", channels=[8, 8, 8]))
    adapt_whitening(model, cifar_images)
    assert_reloads_in_fresh_process(model, cifar_images[:4].astype("float32") / 255.0, tmp_path)
