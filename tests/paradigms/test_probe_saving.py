"""A saved probe (one head or an ensemble of heads) reloads with plain ``keras.saving.load_model`` without the optimizer warning
("Skipping variable loading for optimizer ...") and predicts what the saved model predicted,
whatever precision it was trained in."""

import warnings

import keras
import numpy as np
import pytest

from keras_latent.evaluation.metrics import to_unit_float
from keras_latent.models import HeadEnsemble, build_encoder, save_model_atomic
from keras_latent.models.saving import float32_copy
from keras_latent.paradigms import PROBE_CONFIG, train_probe
from tests.paradigms.conftest import LATENT_DIM, TINY_CONV


@pytest.mark.parametrize("precision, members", [("float32", 1), ("bfloat16", 1), ("bfloat16", 2)])
def test_a_saved_probe_reloads_without_an_optimizer_warning(mnist_small, tmp_path, precision,
                                                            members):
    splits = mnist_small.limit(300, seed=0)
    encoder = build_encoder(splits.image_shape, LATENT_DIM, **TINY_CONV)
    config = PROBE_CONFIG.replace(epochs=1, verbose=0, precision=precision)
    probe = train_probe(encoder, splits, members=members, config=config).model
    assert isinstance(probe.head, HeadEnsemble) == (members > 1)
    path = save_model_atomic(probe, tmp_path / "probe.keras")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = keras.saving.load_model(path)

    messages = [str(warning.message) for warning in caught]
    assert not [m for m in messages if "optimizer" in m.lower()], messages
    assert loaded.optimizer.built
    images = to_unit_float(splits.test.images[:32])
    predicted = np.asarray(loaded(images, training=False))
    saved = float32_copy(probe)  # what the file holds: the model itself, or its float32 twin
    np.testing.assert_array_equal(predicted, np.asarray(saved(images, training=False)))
    trained = np.asarray(probe(images, training=False), dtype="float32")
    tolerance = 0.0 if precision == "float32" else 2e-2 * np.abs(trained).max()  # bf16: 8 bits
    np.testing.assert_allclose(predicted, trained, rtol=0, atol=tolerance)
