"""NT-Xent against a plain NumPy reference and the exact values it must take."""

import math

import keras
import numpy as np
import pytest
from keras import ops

import keras_latent  # noqa: F401  (registers the custom objects)
from keras_latent.losses import NTXent, contrastive_accuracy, nt_xent


def reference_nt_xent(z_1, z_2, temperature):
    """SimCLR's loss written out anchor by anchor, straight from the paper."""
    z = np.concatenate([z_1, z_2]).astype(np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    n = len(z_1)
    total = 0.0
    for i in range(2 * n):
        partner = i + n if i < n else i - n
        sims = [z[i] @ z[k] / temperature for k in range(2 * n)]
        denominator = sum(math.exp(s) for k, s in enumerate(sims) if k != i)
        total += -math.log(math.exp(sims[partner]) / denominator)
    return total / (2 * n)


def random_views(batch, dim, seed):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(batch, dim)).astype("float32"),
            rng.normal(size=(batch, dim)).astype("float32"))


@pytest.mark.parametrize("batch", [2, 8, 33])
@pytest.mark.parametrize("dim", [3, 16])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_matches_numpy_reference(batch, dim, temperature):
    z_1, z_2 = random_views(batch, dim, seed=batch * 100 + dim)
    got = float(nt_xent(z_1, z_2, temperature))
    assert got == pytest.approx(reference_nt_xent(z_1, z_2, temperature), rel=1e-5, abs=1e-5)


def test_symmetric_in_the_two_views():
    z_1, z_2 = random_views(8, 5, seed=1)
    assert float(nt_xent(z_1, z_2)) == pytest.approx(float(nt_xent(z_2, z_1)), abs=1e-6)


@pytest.mark.parametrize("batch", [2, 5, 16])
@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_identical_orthogonal_views_give_the_exact_value(batch, temperature):
    # Identical views, orthonormal images: every anchor has similarity 1 with its partner and
    # 0 with the other 2N - 2 embeddings, so each anchor's loss is
    #   -log(e^{1/t} / (e^{1/t} + (2N - 2) e^0)) = log(1 + (2N - 2) e^{-1/t}).
    z = np.eye(batch, batch + 3, dtype="float32") * 3.0  # scale must not matter
    expected = math.log(1 + (2 * batch - 2) * math.exp(-1 / temperature))
    assert float(nt_xent(z, z, temperature)) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_lowest_when_views_match():
    z_1, z_2 = random_views(8, 16, seed=2)
    matched = float(nt_xent(z_1, z_1))
    assert matched < float(nt_xent(z_1, z_2))
    assert matched < float(nt_xent(z_1, z_1 + 0.5 * z_2))


def test_extra_negatives_only_add_to_the_denominator():
    # A replica's anchors contrasted against the other replica's embeddings give, averaged over
    # replicas, the loss of the whole batch: the distributed SimCLR step relies on this.
    z_1, z_2 = random_views(8, 6, seed=3)
    halves = []
    for mine, theirs in ((slice(0, 4), slice(4, 8)), (slice(4, 8), slice(0, 4))):
        negatives = np.concatenate([z_1[theirs], z_2[theirs]])
        halves.append(float(nt_xent(z_1[mine], z_2[mine], 0.5, negatives=negatives)))
    assert np.mean(halves) == pytest.approx(float(nt_xent(z_1, z_2, 0.5)), abs=1e-5)
    # and they matter: without them each half sees fewer negatives and a lower loss.
    local_only = np.mean([float(nt_xent(z_1[s], z_2[s])) for s in (slice(0, 4), slice(4, 8))])
    assert local_only < np.mean(halves) - 1e-3


def test_float16_inputs_are_computed_in_float32():
    z_1, z_2 = random_views(8, 6, seed=4)
    value = nt_xent(z_1.astype("float16"), z_2.astype("float16"), 0.1)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert float(value) == pytest.approx(reference_nt_xent(z_1, z_2, 0.1), abs=1e-2)


def test_contrastive_accuracy():
    z = np.eye(6, dtype="float32")
    assert float(contrastive_accuracy(z, z)) == 1.0
    # view 2 rotated by one row: every anchor's partner is another image's embedding.
    assert float(contrastive_accuracy(z, np.roll(z, 1, axis=0))) == 0.0
    # half of the images matched: their 4 anchors are right, the other 4 wrong
    shuffled = z[[0, 1, 2, 4, 5, 3]]
    assert float(contrastive_accuracy(z, shuffled)) == pytest.approx(0.5)


@pytest.mark.parametrize("temperature", [0.1, 1.0])
def test_loss_class_equals_function(temperature):
    z_1, z_2 = random_views(8, 5, seed=5)
    loss = NTXent(temperature=temperature)
    y_pred = np.concatenate([z_1, z_2])
    expected = float(nt_xent(z_1, z_2, temperature))
    assert float(loss(None, y_pred)) == pytest.approx(expected, abs=1e-6)
    assert float(loss(np.zeros(16), y_pred)) == pytest.approx(expected, abs=1e-6)
    # per-image losses: weights of shape (N,) weigh images
    weights = np.r_[np.ones(4), np.zeros(4)].astype("float32")
    assert float(NTXent(temperature, reduction="sum")(None, y_pred, sample_weight=weights)) < (
        float(NTXent(temperature, reduction="sum")(None, y_pred)))


def test_loss_class_serialises():
    loss = NTXent(temperature=0.2, name="contrastive")
    again = NTXent.from_config(loss.get_config())
    assert again.temperature == 0.2 and again.name == "contrastive"
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
    assert isinstance(restored, NTXent) and restored.temperature == 0.2


@pytest.mark.parametrize("bad", [0, -0.5, float("nan"), float("inf"), "warm"])
def test_bad_temperature_raises(bad):
    with pytest.raises(ValueError, match="temperature must be > 0"):
        NTXent(temperature=bad)
    z_1, z_2 = random_views(4, 3, seed=6)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        nt_xent(z_1, z_2, temperature=bad)


def test_bad_shapes_raise():
    z_1, z_2 = random_views(4, 3, seed=7)
    with pytest.raises(ValueError, match="at least 2 images"):
        nt_xent(z_1[:1], z_2[:1])
    with pytest.raises(ValueError, match="batch sizes differ"):
        nt_xent(z_1, z_2[:3])
    with pytest.raises(ValueError, match="dimensions differ"):
        nt_xent(z_1, z_2[:, :2])
    with pytest.raises(ValueError, match="shape \\(2N, D\\)"):
        NTXent()(None, np.zeros((5, 3), "float32"))
    with pytest.raises(ValueError, match="flatten"):
        nt_xent(ops.zeros((4, 2, 2)), ops.zeros((4, 2, 2)))
