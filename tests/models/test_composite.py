"""Autoencoder / Classifier: composition, freezing semantics, and save/reload in a fresh process."""

import numpy as np
import pytest

from keras_latent.models import (
    Autoencoder,
    Classifier,
    ModelConfigError,
    build_autoencoder,
    build_classifier,
    build_decoder,
    build_encoder,
    get_preset,
    linear_head,
)
from tests.saving_utils import assert_reloads_in_fresh_process

SHAPE = (28, 28, 1)
TINY = get_preset("mnist_conv", base_channels=4)  # has batch norm: freezing must keep its stats


def batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, *SHAPE), dtype=np.float32), rng.integers(0, 10, size=n)


def snapshot(model):
    return [np.array(w) for w in model.weights]


def test_autoencoder_parts_and_call():
    ae = build_autoencoder(SHAPE, 6, **TINY)
    assert isinstance(ae, Autoencoder)
    x, _ = batch(4)
    z = np.asarray(ae.encode(x))
    assert z.shape == (4, 6)
    np.testing.assert_allclose(np.asarray(ae.decode(z)), np.asarray(ae(x, training=False)), atol=1e-6)
    assert ae.encoder.name == "encoder" and ae.decoder.name == "decoder"


def test_autoencoder_loss_goes_down():
    ae = build_autoencoder(SHAPE, 6, kind="mlp", widths=[32])
    x, _ = batch(32)
    ae.compile(optimizer="adam", loss="mse")
    history = ae.fit(x, x, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_frozen_classifier_keeps_encoder_weights_and_bn_statistics_bit_identical():
    clf = build_classifier(SHAPE, 10, 6, freeze_encoder=True, **TINY)
    x, y = batch()
    clf.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    encoder_before, head_before = snapshot(clf.encoder), snapshot(clf.head)
    clf.fit(x, y, epochs=1, batch_size=8, verbose=0)
    for before, after in zip(encoder_before, snapshot(clf.encoder)):
        assert np.array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(head_before, snapshot(clf.head)))


def test_frozen_encoder_runs_its_dropout_in_inference_mode():
    # Keras 3 runs a non-trainable BatchNormalization in inference mode by itself, but not a
    # Dropout: a frozen encoder with dropout (cifar_conv has 0.2) must still be deterministic
    # while the head trains, or the head would learn from randomly thinned codes.
    config = {**TINY, "dropout": 0.5}
    x, _ = batch(8)
    frozen = build_classifier(SHAPE, 3, 6, freeze_encoder=True, **config)
    first, second = (np.asarray(frozen(x, training=True)) for _ in range(2))
    np.testing.assert_array_equal(first, second)
    unfrozen = build_classifier(SHAPE, 3, 6, freeze_encoder=False, **config)  # the contrast
    assert not np.array_equal(np.asarray(unfrozen(x, training=True)),
                              np.asarray(unfrozen(x, training=True)))


def test_unfrozen_classifier_moves_encoder_and_bn_statistics():
    # The contrast that shows the frozen test above could fail.
    clf = build_classifier(SHAPE, 10, 6, freeze_encoder=False, **TINY)
    x, y = batch()
    clf.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    moving = [w for w in clf.encoder.non_trainable_weights if "moving" in w.path]
    assert moving
    before = [np.array(w) for w in moving]
    clf.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert all(not np.array_equal(b, np.array(w)) for b, w in zip(before, moving))


def test_trainable_weight_count_follows_the_flag():
    clf = build_classifier(SHAPE, 10, 6, head="mlp", head_kwargs={"widths": (8,)}, **TINY)
    n_encoder, n_head = len(clf.encoder.trainable_weights), len(clf.head.trainable_weights)
    assert n_encoder > 0 and n_head == 4  # Dense(8) kernel+bias, logits kernel+bias
    assert len(clf.trainable_weights) == n_encoder + n_head
    clf.freeze_encoder = True
    assert not clf.encoder.trainable and len(clf.trainable_weights) == n_head
    clf.freeze_encoder = False
    assert len(clf.trainable_weights) == n_encoder + n_head
    assert Classifier(build_encoder(SHAPE, 6, **TINY), linear_head(6, 3)).freeze_encoder is True


def test_config_carries_the_freeze_flag():
    clf = build_classifier(SHAPE, 3, 6, freeze_encoder=True, **TINY)
    config = clf.get_config()
    assert config["freeze_encoder"] is True
    clone = Classifier.from_config(config)
    assert clone.freeze_encoder and not clone.encoder.trainable


def test_build_classifier_rejects_unknown_head():
    with pytest.raises(ModelConfigError, match="head must be one of"):
        build_classifier(SHAPE, 10, head="transformer")


def test_autoencoder_reloads_in_fresh_process_and_its_encoder_works_alone(tmp_path):
    encoder, decoder = build_encoder(SHAPE, 6, **TINY), build_decoder(SHAPE, 6, **TINY)
    ae = Autoencoder(encoder, decoder)
    x, _ = batch(8)
    ae.compile(optimizer="adam", loss="mse")
    ae.fit(x, x, epochs=1, batch_size=4, verbose=0)  # moves BN statistics away from their init
    np.save(tmp_path / "codes.npy", np.asarray(ae.encoder.predict(x, verbose=0)))
    assert_reloads_in_fresh_process(
        ae, x, tmp_path,
        extra_code="""
        assert type(model).__name__ == "Autoencoder", type(model)
        encoder = model.encoder
        codes = encoder.predict(x, verbose=0)
        expected = np.load(os.path.join(folder, "codes.npy"))
        assert np.max(np.abs(codes - expected)) <= 1e-6, "extracted encoder differs"
        encoder.save(os.path.join(folder, "encoder.keras"))
        alone = keras.saving.load_model(os.path.join(folder, "encoder.keras"))
        assert np.max(np.abs(alone.predict(x, verbose=0) - expected)) <= 1e-6
        """,
    )


def test_frozen_classifier_reloads_in_fresh_process_still_frozen(tmp_path):
    clf = build_classifier(SHAPE, 10, 6, head="mlp", head_kwargs={"widths": (8,), "batch_norm": True}, freeze_encoder=True, **TINY)
    x, y = batch(8)
    clf.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    clf.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert_reloads_in_fresh_process(
        clf, x, tmp_path,
        extra_code="""
        assert type(model).__name__ == "Classifier" and model.freeze_encoder
        assert not model.encoder.trainable
        before = [np.array(w) for w in model.encoder.weights]
        model.fit(x, np.zeros(len(x), "int64"), epochs=1, batch_size=4, verbose=0)
        assert all(np.array_equal(b, np.array(w)) for b, w in zip(before, model.encoder.weights))
        """,
    )


def test_composites_are_built_at_construction_so_an_unfitted_save_keeps_weights(tmp_path):
    from keras_latent.models import load_model, save_model_atomic

    x, _ = batch(4)
    for model in (build_autoencoder(SHAPE, 6, **TINY), build_classifier(SHAPE, 3, 6, **TINY)):
        assert model.built
        path = save_model_atomic(model, tmp_path / f"{model.name}.keras")
        reloaded = load_model(path)
        np.testing.assert_array_equal(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))
