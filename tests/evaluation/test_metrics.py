"""Metrics against values worked out by hand on tiny arrays."""

import numpy as np
import pytest

from keras_latent.evaluation import metrics


def test_mae_scales_uint8_and_matches_hand_value():
    images = np.array([[0, 255], [51, 102]], dtype=np.uint8)  # 0, 1, 0.2, 0.4
    reconstructions = np.array([[0.1, 0.9], [0.2, 0.0]], dtype="float32")
    # |0-.1| + |1-.9| + |.2-.2| + |.4-0| = 0.6 over 4 pixels
    assert metrics.mean_absolute_error(images, reconstructions) == pytest.approx(0.15, abs=1e-6)
    assert metrics.mean_absolute_error(reconstructions, reconstructions) == 0.0


def test_mae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shape"):
        metrics.mean_absolute_error(np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4, 3)))


def test_accuracy_from_ids_and_from_logits():
    labels = np.array([0, 1, 2, 2])
    assert metrics.accuracy(labels, np.array([0, 1, 1, 2])) == pytest.approx(0.75)
    logits = np.array([[5.0, 0, 0], [0, 0, 9.0], [0, 0, 1.0], [-1.0, 0, -2.0]])  # 0, 2, 2, 1
    assert metrics.accuracy(labels, logits) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="labels but"):
        metrics.accuracy(labels, np.array([0, 1]))


def test_confusion_matrix_and_per_class_accuracy():
    labels = np.array([0, 0, 1, 1, 1])
    predictions = np.array([0, 1, 1, 1, 0])
    cm = metrics.confusion_matrix(labels, predictions, num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [1, 2, 0], [0, 0, 0]])
    per_class = metrics.per_class_accuracy(labels, predictions, num_classes=3)
    np.testing.assert_allclose(per_class[:2], [0.5, 2 / 3])
    assert np.isnan(per_class[2])  # no example of class 2: unknown, not 0


def test_knn_accuracy_cosine_uses_direction_not_length():
    train_z = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    train_y = np.array([0, 0, 1, 1])
    test_z = np.array([[100.0, 1.0], [0.01, 0.5], [1.0, 1.2]])
    test_y = np.array([0, 1, 0])  # the last one is nearer class 1 by angle -> wrong
    assert metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=1) == pytest.approx(2 / 3)
    # k larger than the training set is clipped rather than crashing
    assert 0.0 <= metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=50) <= 1.0


def _weighted_knn_reference(train_z, train_y, test_z, k, temperature):
    """The InstDisc / lightly protocol one test row at a time, as a loop over classes."""
    def unit(z):
        return z / np.linalg.norm(z, axis=1, keepdims=True)

    train_n, predicted = unit(train_z), []
    for row in unit(test_z):
        similarity = train_n @ row
        nearest = np.argsort(-similarity)[:k]
        votes = {label: 0.0 for label in np.unique(train_y)}
        for index in nearest:
            votes[train_y[index]] += np.exp(similarity[index] / temperature)
        predicted.append(max(sorted(votes), key=lambda label: votes[label]))
    return np.array(predicted)


def _overlapping_classes(seed, n_train=400, n_test=120, dim=16, classes=5):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dim))
    train_y, test_y = rng.integers(0, classes, n_train) * 3, rng.integers(0, classes, n_test) * 3
    train_z = centres[train_y // 3] + 1.5 * rng.normal(size=(n_train, dim))
    test_z = centres[test_y // 3] + 1.5 * rng.normal(size=(n_test, dim))
    return train_z, train_y, test_z, test_y


def test_weighted_knn_matches_a_loop_reference_in_any_block_size():
    train_z, train_y, test_z, test_y = _overlapping_classes(0)  # labels 0, 3, 6...: not 0..C-1
    expected = _weighted_knn_reference(train_z, train_y, test_z, 200, 0.07)
    for block in (400, 401 * 7, 10**8):  # one test row per block, 7 rows, all at once
        predicted = metrics.weighted_knn_predict(train_z, train_y, test_z, 200, 0.07,
                                                 max_block=block)
        np.testing.assert_array_equal(predicted, expected)
    accuracy = metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=metrics.WEIGHTED_KNN_K,
                                    temperature=metrics.WEIGHTED_KNN_TEMPERATURE)
    assert accuracy == pytest.approx(np.mean(expected == test_y))
    assert 0.3 < accuracy < 1.0  # overlapping classes: neither trivial nor chance


def test_weighted_knn_differs_from_the_majority_vote_and_checks_its_arguments():
    # one close neighbour of class 1 outweighs two distant ones of class 0 at a low temperature
    train_z = np.array([[1.0, 0.0], [0.0, 1.0], [0.1, 1.0]])
    train_y = np.array([1, 0, 0])
    test_z, test_y = np.array([[1.0, 0.2]]), np.array([1])
    assert metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=3) == 0.0
    assert metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=3, temperature=0.07) == 1.0
    with pytest.raises(ValueError, match="metric='cosine'"):
        metrics.knn_accuracy(train_z, train_y, test_z, test_y, metric="euclidean",
                             temperature=0.07)


def test_linear_probe_separates_separable_codes_and_is_seeded():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    codes = rng.normal(size=(300, 8)) * 0.3
    codes[np.arange(300), labels] += 3.0  # class k lives along axis k
    train, test = slice(0, 200), slice(200, 300)
    first = metrics.linear_probe_accuracy(codes[train], labels[train], codes[test], labels[test])
    again = metrics.linear_probe_accuracy(codes[train], labels[train], codes[test], labels[test])
    assert first == again
    assert first > 0.95
    noise = rng.normal(size=(300, 8))
    chance = metrics.linear_probe_accuracy(noise[train], labels[train], noise[test], labels[test])
    assert chance < first


def test_silhouette_matches_two_point_clusters():
    # two tight clusters on orthogonal axes: cosine distance 0 inside, 1 across -> score 1
    z = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0]])
    y = np.array([0, 0, 1, 1])
    assert metrics.silhouette(z, y) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="distinct labels"):
        metrics.silhouette(z, np.zeros(4))


def test_codes_with_nan_are_rejected():
    z = np.array([[np.nan, 0.0], [1.0, 1.0]])
    with pytest.raises(ValueError, match="NaN"):
        metrics.knn_accuracy(z, [0, 1], z, [0, 1], k=1)


class _Doubler:
    """A stand-in model: records each batch it is fed and returns 2x its input, flattened."""

    def __init__(self):
        self.batches = []

    def predict(self, x, batch_size=None, verbose=None):
        assert verbose == 0
        self.batches = [np.asarray(batch) for batch in x]
        return np.concatenate([2.0 * b.reshape(len(b), -1) for b in self.batches])


def test_predict_in_batches_scales_uint8_batch_by_batch_in_order():
    images = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2, 1)
    model = _Doubler()
    out = metrics.predict_in_batches(model, images, batch_size=2)
    np.testing.assert_allclose(out, 2.0 * images.reshape(5, 4) / 255.0, rtol=1e-6)
    assert [len(b) for b in model.batches] == [2, 2, 1]
    assert all(b.dtype == np.float32 for b in model.batches)


def test_predict_in_batches_takes_float_codes_as_they_are():
    codes = np.linspace(-3, 3, 12).reshape(6, 2)
    out = metrics.predict_in_batches(_Doubler(), codes, batch_size=4)
    np.testing.assert_allclose(out, 2.0 * codes, rtol=1e-6)


def test_predict_in_batches_refuses_an_empty_array():
    with pytest.raises(ValueError, match="no images"):
        metrics.predict_in_batches(_Doubler(), np.zeros((0, 2, 2, 1), dtype=np.uint8))


def test_encode_goes_through_the_encoder_attribute():
    class WithEncoder:
        encoder = _Doubler()

        def predict(self, *args, **kwargs):
            raise AssertionError("the full model should not run")

    codes = metrics.encode(WithEncoder(), np.zeros((3, 2, 2, 1), dtype=np.uint8))
    assert codes.shape == (3, 4)
