"""Heads: shapes, logits (no softmax), and the projection head's layout."""

import numpy as np
import pytest

from keras_latent.models import ModelConfigError, linear_head, mlp_head, projection_head


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
