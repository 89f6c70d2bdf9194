"""Heads: shapes, logits (no softmax), the projection head's layout, and head ensembles."""

import numpy as np
import pytest

from keras_latent.models import (
    HeadEnsemble,
    ModelConfigError,
    linear_head,
    mlp_head,
    projection_head,
)


def codes(latent_dim, n=3):
    return np.random.default_rng(1).normal(size=(n, latent_dim)).astype("float32")


def test_linear_head_is_one_dense_matching_numpy():
    head = linear_head(6, 4)
    assert head.name == "head" and head.output_shape == (None, 4)
    kernel, bias = head.get_layer("logits").get_weights()
    z = codes(6)
    np.testing.assert_allclose(np.asarray(head(z)), z @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_heads_output_logits_not_probabilities():
    z = codes(8) * 50
    for head in (linear_head(8, 5), mlp_head(8, 5, widths=(16,))):
        logits = np.asarray(head(z))
        assert not np.allclose(logits.sum(axis=1), 1.0)


@pytest.mark.parametrize("widths", [(), (16,), (32, 16)])
def test_mlp_head_widths_dropout_batch_norm(widths):
    head = mlp_head(8, 3, widths=widths, dropout=0.2, batch_norm=True)
    assert head.name == "head" and tuple(head(codes(8)).shape) == (3, 3)
    units = [layer.units for layer in head.layers if layer.__class__.__name__ == "Dense"]
    assert units == [*widths, 3]
    kinds = [layer.__class__.__name__ for layer in head.layers]
    assert kinds.count("BatchNormalization") == kinds.count("Dropout") == len(widths)


@pytest.mark.parametrize("batch_norm", [True, False])
def test_projection_head_layout(batch_norm):
    head = projection_head(16, hidden_dim=32, output_dim=8, batch_norm=batch_norm)
    assert head.name == "projection_head" and head.output_shape == (None, 8)
    kinds = [layer.__class__.__name__ for layer in head.layers[1:]]
    expected = ["Dense"] + (["BatchNormalization"] if batch_norm else []) + ["Activation", "Dense"]
    assert kinds == expected


def test_bad_head_arguments():
    with pytest.raises(ModelConfigError, match="num_classes"):
        linear_head(8, 0)
    with pytest.raises(ModelConfigError, match="dropout"):
        mlp_head(8, 3, dropout=1.0)
    with pytest.raises(ModelConfigError, match="hidden_dim"):
        projection_head(8, hidden_dim=-1)


def test_heads_output_float32_under_mixed_precision():
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        heads = [mlp_head(8, 3, widths=(16,)), projection_head(8, hidden_dim=16, output_dim=4)]
    finally:
        keras.mixed_precision.set_global_policy(previous)
    for head in heads:
        assert head.get_layer("hidden1" if head.name == "head" else "hidden").compute_dtype == "float16"
        assert keras.backend.standardize_dtype(head(codes(8)).dtype) == "float32"


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _ensemble(members=3, latent_dim=8, classes=4):
    import keras

    keras.utils.set_random_seed(0)
    return HeadEnsemble([mlp_head(latent_dim, classes, widths=(16,)) for _ in range(members)])


def test_head_ensemble_predicts_the_members_mean_probability():
    ensemble = _ensemble()
    z = codes(8, n=5) * 3
    member_probabilities = [_softmax(np.asarray(m(z))) for m in ensemble.members]
    logits = np.asarray(ensemble(z))
    assert logits.shape == (5, 4) and ensemble.compute_output_shape((None, 8)) == (None, 4)
    np.testing.assert_allclose(_softmax(logits), np.mean(member_probabilities, axis=0), atol=1e-6)
    np.testing.assert_allclose(np.log(np.mean(member_probabilities, axis=0)), logits, atol=1e-5)


def test_head_ensemble_scores_each_member_on_its_own_loss():
    """The loss is the mean of the members' own cross-entropies (independent members), not the
    cross-entropy of the averaged output (one wide head)."""
    import keras

    ensemble = _ensemble()
    ensemble.compile(optimizer="adam",
                     loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    z, y = codes(8, n=6) * 3, np.array([0, 1, 2, 3, 0, 1])
    member_ce = [-np.log(_softmax(np.asarray(m(z)))[np.arange(6), y]).mean() for m in ensemble.members]
    y_pred = ensemble(z)
    loss = float(ensemble.compute_loss(z, y, y_pred, training=False))
    np.testing.assert_allclose(loss, np.mean(member_ce), rtol=1e-5)
    joint = -np.log(_softmax(np.asarray(y_pred))[np.arange(6), y]).mean()
    assert abs(loss - joint) > 1e-3
    ensemble(codes(8, n=2))  # a later call: the members now run again on z, same loss
    again = float(ensemble.compute_loss(z, y, y_pred, training=False))
    np.testing.assert_allclose(again, loss, rtol=1e-6)


def test_head_ensemble_reloads_predicting_the_same(tmp_path):
    import keras

    ensemble = _ensemble(members=2)
    z = codes(8, n=4)
    ensemble.save(tmp_path / "ensemble.keras")
    loaded = keras.saving.load_model(tmp_path / "ensemble.keras")
    assert isinstance(loaded, HeadEnsemble) and len(loaded.members) == 2
    np.testing.assert_array_equal(np.asarray(loaded(z)), np.asarray(ensemble(z)))


def test_head_ensemble_needs_members():
    with pytest.raises(ModelConfigError, match="at least one member"):
        HeadEnsemble([])


def test_a_zero_initialised_linear_head_starts_uniform_and_learns():
    """``zero_init``: the first loss is ln C whatever the code's scale (a random head's is far
    above it on large codes), and training moves it."""
    import keras

    z, labels = codes(8, n=64) * 50, np.arange(64) % 5
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    random_start = float(loss(labels, linear_head(8, 5)(z)))
    head = linear_head(8, 5, zero_init=True)
    assert float(loss(labels, head(z))) == pytest.approx(np.log(5), rel=1e-6)
    assert random_start > 2 * np.log(5)
    head.compile(optimizer=keras.optimizers.SGD(1e-3), loss=loss)
    history = head.fit(z, labels, epochs=3, batch_size=64, verbose=0).history["loss"]
    assert history[-1] < history[0]
