"""Numbers that judge a representation: NumPy arrays in, plain Python floats out.

Everything here is framework-free (NumPy + scikit-learn) so the same functions score a Keras
model, a saved ``.npz`` of codes or a callback's mid-training snapshot. The only model-aware
pieces are :func:`predict_in_batches` / :func:`encode`, which feed uint8 images to
``model.predict`` through the data layer's pipeline, scaled a batch at a time, so a whole
training split never sits in memory as float32.
t-SNE lives here too (:func:`tsne_embeddings`): its coordinates are results that reports store
and comparisons reuse; ``plots`` only draws them.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix as _sk_confusion_matrix
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

__all__ = [
    "to_unit_float",
    "mean_absolute_error",
    "to_class_ids",
    "accuracy",
    "confusion_matrix",
    "per_class_accuracy",
    "knn_accuracy",
    "WEIGHTED_KNN_K",
    "WEIGHTED_KNN_TEMPERATURE",
    "weighted_knn_predict",
    "l2_normalised",
    "fit_linear_probe",
    "linear_probe_accuracy",
    "silhouette",
    "predict_in_batches",
    "encode",
    "TSNEEmbeddings",
    "embed_tsne",
    "tsne_embeddings",
]


# --------------------------------------------------------------------------- pixels


def to_unit_float(images) -> np.ndarray:
    """float32 pixels in [0, 1]: uint8 bytes are scaled by 1/255, floats are taken as they are."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    return images.astype("float32", copy=False)


def mean_absolute_error(images, reconstructions) -> float:
    """Mean |x - x_hat| over every pixel, both sides on the [0, 1] scale the models train on."""
    images, reconstructions = to_unit_float(images), to_unit_float(reconstructions)
    if images.shape != reconstructions.shape:
        raise ValueError(
            f"images {images.shape} and reconstructions {reconstructions.shape} differ in "
            "shape; pass the decoder output for exactly these images."
        )
    if images.size == 0:
        raise ValueError("mean_absolute_error needs at least one image, got an empty array.")
    return float(np.mean(np.abs(images - reconstructions)))


# --------------------------------------------------------------------------- classification


def to_class_ids(predictions_or_logits) -> np.ndarray:
    """Class ids from either ids ``(N,)`` or scores ``(N, num_classes)`` (argmax of logits)."""
    values = np.asarray(predictions_or_logits)
    if values.ndim == 2:
        return np.argmax(values, axis=1)
    if values.ndim == 1:
        return values.astype("int64")
    raise ValueError(
        f"predictions must be class ids (N,) or logits (N, num_classes), got shape {values.shape}."
    )


def _labels_and_predictions(labels, predictions):
    labels = np.asarray(labels).reshape(-1).astype("int64")
    predictions = to_class_ids(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"{labels.shape[0]} labels but {predictions.shape[0]} predictions; "
            "they must describe the same examples."
        )
    if labels.size == 0:
        raise ValueError("accuracy needs at least one example, got none.")
    return labels, predictions


def accuracy(labels, predictions_or_logits) -> float:
    """Fraction of examples whose predicted class (argmax when logits are given) is the label."""
    labels, predictions = _labels_and_predictions(labels, predictions_or_logits)
    return float(np.mean(labels == predictions))


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    labels, predictions = _labels_and_predictions(labels, predictions)
    return _sk_confusion_matrix(labels, predictions, labels=np.arange(int(num_classes)))


def per_class_accuracy(labels, predictions, num_classes: int) -> np.ndarray:
    """Recall of each class, ``(num_classes,)``; NaN for a class with no example in ``labels``.

    NaN rather than 0 so an absent class is not mistaken for a class the model always misses.
    """
    matrix = confusion_matrix(labels, predictions, num_classes)
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


# --------------------------------------------------------------------------- latent codes


def _codes_and_labels(z, y, name):
    z = np.asarray(z, dtype="float64")
    y = np.asarray(y).reshape(-1)
    if z.ndim != 2:
        raise ValueError(f"{name} codes must be 2-D (N, latent_dim), got shape {z.shape}.")
    if z.shape[0] != y.shape[0]:
        raise ValueError(f"{name}: {z.shape[0]} codes but {y.shape[0]} labels.")
    if z.shape[0] == 0:
        raise ValueError(f"{name}: no codes given.")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} codes contain NaN or inf; the encoder's weights have diverged.")
    return z, y


#: The self-supervised benchmarks' k-NN protocol (InstDisc; lightly, solo-learn): 200 cosine
#: neighbours, each voting with weight exp(similarity / 0.07).
WEIGHTED_KNN_K = 200
WEIGHTED_KNN_TEMPERATURE = 0.07


def knn_accuracy(train_z, train_y, test_z, test_y, k: int = 20, metric: str = "cosine", *,
                 temperature: float | None = None) -> float:
    """Accuracy of a k-nearest-neighbour vote in latent space: no training, so it measures how
    well the geometry of the codes alone groups the classes (the usual SSL monitor).

    ``temperature=None``: a majority vote of the ``k`` nearest (scikit-learn, ``metric``).
    A temperature: the weighted protocol of the SSL benchmarks (cosine similarity only), each
    neighbour voting ``exp(similarity / temperature)``; ``k=WEIGHTED_KNN_K,
    temperature=WEIGHTED_KNN_TEMPERATURE`` gives figures comparable with theirs.
    """
    train_z, train_y = _codes_and_labels(train_z, train_y, "train")
    test_z, test_y = _codes_and_labels(test_z, test_y, "test")
    if int(k) < 1:
        raise ValueError(f"k must be >= 1, got {k}.")
    k = min(int(k), len(train_z))
    if temperature is not None:
        if metric != "cosine" or not temperature > 0:
            raise ValueError("the weighted k-NN takes metric='cosine' and a temperature > 0, "
                             f"got {metric!r} and {temperature}.")
        predicted = weighted_knn_predict(train_z, train_y, test_z, k, float(temperature))
        return float(np.mean(predicted == test_y))
    knn = KNeighborsClassifier(n_neighbors=k, metric=metric)
    knn.fit(train_z, train_y)
    return float(np.mean(knn.predict(test_z) == test_y))


def l2_normalised(z) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero)."""
    z = np.asarray(z, dtype="float64")
    norms = np.linalg.norm(z, axis=1, keepdims=True)
    return z / np.maximum(norms, 1e-12)


def weighted_knn_predict(train_z, train_y, test_z, k, temperature,
                         max_block: int = 4_000_000) -> np.ndarray:
    """Class of each test code by the temperature-weighted vote of its ``k`` most
    cosine-similar train codes. Test rows go a block at a time, so at most ``max_block``
    similarities (float32) are held: 10k x 50k at once would take 2 GB."""
    classes, train_ids = np.unique(np.asarray(train_y), return_inverse=True)
    train_n = l2_normalised(train_z).astype("float32")
    test_n = l2_normalised(test_z).astype("float32")
    rows = max(1, int(max_block) // len(train_n))
    predicted = np.empty(len(test_n), dtype=np.int64)
    for start in range(0, len(test_n), rows):
        similarity = test_n[start:start + rows] @ train_n.T
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        weights = np.exp(np.take_along_axis(similarity, nearest, axis=1).astype("float64")
                         / temperature)
        votes = np.zeros((len(similarity), len(classes)))
        np.add.at(votes, (np.arange(len(similarity))[:, None], train_ids[nearest]), weights)
        predicted[start:start + rows] = np.argmax(votes, axis=1)
    return classes[predicted]


def fit_linear_probe(train_z, train_y, seed: int = 0, max_iter: int = 200):
    """A logistic regression on standardised frozen codes (an sklearn Pipeline).

    Standardising first makes the bounded L-BFGS run converge on codes of any scale, which keeps
    the probe to seconds even on a full training split.
    """
    train_z, train_y = _codes_and_labels(train_z, train_y, "train")
    if len(np.unique(train_y)) < 2:
        raise ValueError("a linear probe needs at least two classes among the training labels.")
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=int(max_iter), random_state=seed)
    )
    with warnings.catch_warnings():
        # max_iter is a deliberate budget; an unconverged probe is still a fair, seeded figure.
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(train_z, train_y)
    return probe


def linear_probe_accuracy(train_z, train_y, test_z, test_y, seed: int = 0,
                          max_iter: int = 200) -> float:
    """Test accuracy of :func:`fit_linear_probe`: how linearly separable the classes are."""
    test_z, test_y = _codes_and_labels(test_z, test_y, "test")
    probe = fit_linear_probe(train_z, train_y, seed=seed, max_iter=max_iter)
    return float(np.mean(probe.predict(test_z) == test_y))


def silhouette(z, y, sample: int = 2000, seed: int = 0, metric: str = "cosine") -> float:
    """Silhouette score of the labels as clusters of the codes, in [-1, 1] (higher = tighter,
    better separated classes); computed on a seeded sample since it is quadratic in N."""
    z, y = _codes_and_labels(z, y, "silhouette")
    if len(z) > sample:
        keep = np.random.default_rng(seed).choice(len(z), size=int(sample), replace=False)
        z, y = z[keep], y[keep]
    num_labels = len(np.unique(y))
    if not 2 <= num_labels <= len(z) - 1:
        raise ValueError(
            f"silhouette needs 2..N-1 distinct labels, got {num_labels} among {len(z)} codes."
        )
    return float(silhouette_score(z, y, metric=metric))


# --------------------------------------------------------------------------- running models


def predict_in_batches(model, images, batch_size: int = 256) -> np.ndarray:
    """``model.predict`` over uint8 images (scaled to [0, 1] a batch at a time) or any float
    array, fed by the data layer's in-order pipeline."""
    from keras_latent.data import prediction_dataset

    batches = prediction_dataset(images, batch_size)
    return np.asarray(model.predict(batches, verbose=0))


def encode(model, images, batch_size: int = 256) -> np.ndarray:
    """Latent codes ``(N, latent_dim)``: through ``model.encoder`` when the model has one (an
    autoencoder, classifier or SimCLR model), else through the model itself (an encoder)."""
    encoder = getattr(model, "encoder", None)
    return predict_in_batches(model if encoder is None else encoder, images, batch_size=batch_size)


# --------------------------------------------------------------------------- t-SNE


class TSNEEmbeddings(NamedTuple):
    """2-D t-SNE coordinates of one seeded sample, in pixel space and in latent space."""

    image_2d: np.ndarray
    latent_2d: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def embed_tsne(features, seed: int = 0, pca_dim: int = 50) -> np.ndarray:
    """``(N, 2)`` seeded t-SNE of ``features`` (flattened), after PCA to ``pca_dim`` when wider.

    PCA first is the standard recipe: it removes pixel noise and makes t-SNE far cheaper.
    PCA and Barnes-Hut run on one thread: on a busy shared CPU their threads spin-wait, and one
    thread measured 9x faster for 200 points and 2.5x for 2000 (2 cores, load ~7).
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    features = np.asarray(features, dtype="float32").reshape(len(features), -1)
    if len(features) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(features)}.")
    if not np.all(np.isfinite(features)):
        raise ValueError("t-SNE input contains NaN or inf; check the model's outputs.")
    perplexity = float(min(30.0, (len(features) - 1) / 3.0))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    with threadpool_limits(limits=1):
        if features.shape[1] > pca_dim:
            pca = PCA(n_components=min(pca_dim, len(features)), random_state=seed)
            features = pca.fit_transform(features)
        return tsne.fit_transform(features).astype("float32")


def tsne_embeddings(images, latents, labels, sample: int = 2000, seed: int = 0) -> TSNEEmbeddings:
    """t-SNE of the same seeded sample of images and of their latent codes."""
    images, latents, labels = np.asarray(images), np.asarray(latents), np.asarray(labels)
    if not len(images) == len(latents) == len(labels):
        raise ValueError(
            f"images ({len(images)}), latents ({len(latents)}) and labels ({len(labels)}) must "
            "describe the same examples."
        )
    indices = np.arange(len(images))
    if len(images) > sample:
        indices = np.sort(np.random.default_rng(seed).choice(len(images), int(sample), False))
    return TSNEEmbeddings(
        image_2d=embed_tsne(to_unit_float(images[indices]), seed=seed),
        latent_2d=embed_tsne(latents[indices], seed=seed),
        labels=labels[indices].astype("int64"),
        indices=indices,
    )
