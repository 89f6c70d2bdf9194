"""load_dataset(): real data through the env var, splits, and every error path."""

import os
import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from keras_latent.data import datasets
from keras_latent.data.datasets import DatasetError, DatasetSplits, Split, load_dataset

MNIST_FIRST_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
CIFAR_FIRST_LABELS = [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch, request):
    """Bad files written by these tests must not land in the shared decompressed-array cache."""
    if "data_dir" not in request.fixturenames:
        monkeypatch.setenv(datasets.CACHE_DIR_ENV, str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def cifar(data_dir):
    return load_dataset("cifar10", validation_fraction=0.0)


def write_npz(path, **overrides):
    arrays = {
        "x_train": np.zeros((20, 28, 28), np.uint8),
        "y_train": np.arange(20, dtype=np.uint8) % 10,
        "x_test": np.zeros((5, 28, 28), np.uint8),
        "y_test": np.arange(5, dtype=np.uint8),
    }
    arrays.update(overrides)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return path


# --- real data --------------------------------------------------------------------------------


def test_mnist_from_env_var(data_dir):
    splits = load_dataset("mnist", validation_fraction=0.0)
    assert splits.train.images.shape == (60000, 28, 28, 1) and splits.test.images.shape == (10000, 28, 28, 1)
    assert splits.train.images.dtype == np.uint8 and splits.train.labels.dtype == np.int64
    assert splits.train.labels.shape == (60000,)
    assert splits.train.labels[:10].tolist() == MNIST_FIRST_LABELS
    assert splits.image_shape == (28, 28, 1) and splits.num_classes == 10 and len(splits.val) == 0
    assert splits.train.images.max() == 255 and splits.train.images.min() == 0


def test_cifar10_from_env_var(cifar):
    assert cifar.train.images.shape == (50000, 32, 32, 3) and cifar.test.images.shape == (10000, 32, 32, 3)
    assert cifar.train.labels.dtype == np.int64 and cifar.test.labels.shape == (10000,)
    assert cifar.train.labels[:10].tolist() == CIFAR_FIRST_LABELS
    assert cifar.class_names[0] == "airplane" and cifar.num_classes == 10
    # The well-known per-channel mean, from the first 5000 images (close to the full-set value).
    mean = cifar.train.images[:5000].reshape(-1, 3).mean(axis=0) / 255
    np.testing.assert_allclose(mean, [0.4914, 0.4822, 0.4465], atol=0.01)


def test_loaded_arrays_are_read_only(cifar):
    with pytest.raises(ValueError):
        cifar.train.images[0, 0, 0, 0] = 1


def test_validation_split_is_disjoint_seeded_and_sized(data_dir):
    full = load_dataset("mnist", validation_fraction=0.0).train
    a = load_dataset("mnist", validation_fraction=0.1, seed=0)
    b = load_dataset("mnist", validation_fraction=0.1, seed=0)
    c = load_dataset("mnist", validation_fraction=0.1, seed=1)
    assert (len(a.train), len(a.val), len(a.test)) == (54000, 6000, 10000)
    np.testing.assert_array_equal(a.val.images, b.val.images)
    assert not np.array_equal(a.val.labels, c.val.labels)
    # Disjoint and complete: rebuild which training rows went where via a per-image fingerprint.
    fingerprint = lambda images: np.array([hash(row.tobytes()) for row in images])  # noqa: E731
    every = np.sort(fingerprint(full.images))
    parts = np.sort(np.concatenate([fingerprint(a.train.images), fingerprint(a.val.images)]))
    np.testing.assert_array_equal(every, parts)
    assert np.bincount(a.val.labels, minlength=10).min() > 400  # a random, not a sorted, slice


def test_split_take_and_limit(data_dir):
    splits = load_dataset("mnist")
    first = splits.train.take(5)
    np.testing.assert_array_equal(first.labels, splits.train.labels[:5])
    sample = splits.train.take(100, seed=3)
    assert len(sample) == 100 and not np.array_equal(sample.labels, splits.train.labels[:100])
    np.testing.assert_array_equal(sample.images, splits.train.take(100, seed=3).images)
    limited = splits.limit(50, seed=0)
    assert isinstance(limited, DatasetSplits)
    assert (len(limited.train), len(limited.val), len(limited.test)) == (50, 50, 50)
    assert limited.image_shape == (28, 28, 1) and limited.class_names == splits.class_names
    assert splits.limit(10**9).train is splits.train


def test_explicit_data_dir_wins_over_env_var(tmp_path, data_dir):
    write_npz(tmp_path / "mnist.npz")
    splits = load_dataset("mnist", data_dir=tmp_path, validation_fraction=0.0)
    assert len(splits.train) == 20 and len(splits.test) == 5


# --- other sources ------------------------------------------------------------------------------


def test_cifar_python_batches_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    expected = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
        labels = rng.integers(0, 10, size=4).tolist()
        rows = images.transpose(0, 3, 1, 2).reshape(4, 3072)  # the official channel-first rows
        with open(folder / name, "wb") as handle:
            pickle.dump({b"data": rows, b"labels": labels}, handle)
        expected[name] = (images, labels)
    splits = load_dataset("cifar10", data_dir=tmp_path, validation_fraction=0.0)
    assert splits.train.images.shape == (20, 32, 32, 3) and splits.train.labels.dtype == np.int64
    np.testing.assert_array_equal(splits.train.images[:4], expected["data_batch_1"][0])
    np.testing.assert_array_equal(splits.train.images[16:], expected["data_batch_5"][0])
    np.testing.assert_array_equal(splits.test.images, expected["test_batch"][0])
    assert splits.test.labels.tolist() == expected["test_batch"][1]


def test_keras_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    write_npz(tmp_path / "datasets" / "mnist.npz", y_train=np.full((20, 1), 7, np.uint8))
    splits = load_dataset("mnist", validation_fraction=0.0)
    assert splits.train.labels.tolist() == [7] * 20  # (N, 1) labels flattened


def test_fashion_mnist_is_registered():
    spec = datasets.get_spec("fashion_mnist")
    assert spec.image_shape == (28, 28, 1) and len(spec.class_names) == 10


# --- errors -------------------------------------------------------------------------------------


def test_unknown_name_lists_known_ones():
    with pytest.raises(DatasetError, match=r"Unknown dataset 'svhn'.*cifar10, fashion_mnist, mnist"):
        load_dataset("svhn")


def test_missing_data_dir(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*KERAS_LATENT_DATA_DIR"):
        load_dataset("mnist", data_dir=tmp_path / "nope")


def test_empty_data_dir(tmp_path):
    with pytest.raises(DatasetError, match=r"No usable copy of mnist in .*expected mnist.npz"):
        load_dataset("mnist", data_dir=tmp_path)


def test_env_var_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.DATA_DIR_ENV, str(tmp_path / "missing"))
    with pytest.raises(DatasetError, match=r"KERAS_LATENT_DATA_DIR=.*missing.*not a folder"):
        load_dataset("mnist")


def test_bad_validation_fraction(tmp_path):
    with pytest.raises(DatasetError, match="validation_fraction"):
        load_dataset("mnist", data_dir=tmp_path, validation_fraction=1.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"y_test": None}, r"lacks the arrays \['y_test'\]"),
        ({"x_train": np.zeros((20, 32, 32), np.uint8)}, r"x_train has shape \(20, 32, 32, 1\), expected \(N, 28, 28, 1\)"),
        ({"x_train": np.zeros((20, 28, 28), np.float32)}, r"x_train has dtype float32, expected uint8"),
        ({"y_train": np.arange(20, dtype=np.int64)}, r"y_train holds labels 0..19, outside 0..9"),
        ({"y_test": np.zeros(4, np.uint8)}, r"y_test has shape \(4,\).*expected 5 integer labels"),
    ],
)
def test_bad_npz_contents(tmp_path, overrides, message):
    path = write_npz(tmp_path / "mnist.npz", **overrides)
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset("mnist", data_dir=tmp_path)
    assert str(path) in str(info.value)


def test_truncated_npz(tmp_path):
    path = write_npz(tmp_path / "mnist.npz", x_train=np.random.default_rng(0).integers(0, 255, (20, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[: os.path.getsize(path) // 2])
    with pytest.raises(DatasetError, match=r"mnist.npz is not a readable NumPy .npz archive.*again"):
        load_dataset("mnist", data_dir=tmp_path)


def test_corrupt_cifar_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"data_batch_1 is not a readable CIFAR-10 python batch"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_offline_without_local_copy_says_how_to_provide_one(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(datasets.tempfile, "tempdir", str(tmp_path))
    offline = types.ModuleType("tensorflow_datasets")

    def load(*args, **kwargs):
        raise ConnectionError("no network")

    offline.load = load
    offline.as_numpy = lambda data: data
    offline.builder = lambda name: types.SimpleNamespace(is_prepared=lambda: False)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", offline)
    datasets._load_tfds.cache_clear()
    # The host answers but the download fails ...
    monkeypatch.setattr(datasets, "_online", lambda: True)
    with pytest.raises(DatasetError, match=r"No local copy of mnist.*no network.*Put mnist.npz.*KERAS_LATENT_DATA_DIR="):
        load_dataset("mnist")
    datasets._load_tfds.cache_clear()
    # ... or the machine is offline: fail at once instead of letting TFDS retry for minutes.
    monkeypatch.setattr(datasets, "_online", lambda: False)
    with pytest.raises(DatasetError, match=r"No local copy of mnist.*offline.*KERAS_LATENT_DATA_DIR="):
        load_dataset("mnist")
    datasets._load_tfds.cache_clear()


def test_split_is_frozen():
    split = Split(np.zeros((3, 2, 2, 1), np.uint8), np.zeros(3, np.int64))
    assert len(split) == 3
    with pytest.raises(Exception):
        split.images = None
    with pytest.raises(ValueError):
        split.take(-1)


# --- the decompressed .npy cache (issue 14, item 11) ------------------------------------------


def _cache_folders():
    return sorted(path for path in Path(os.environ[datasets.CACHE_DIR_ENV]).iterdir())


def _fresh_load(path_dir, **kwargs):
    for cached in (datasets._load_splits, datasets._read_cached, datasets._read_npz):
        getattr(cached, "cache_clear", lambda: None)()
    return load_dataset("mnist", data_dir=path_dir, validation_fraction=0.0, **kwargs)


def test_a_rejected_file_leaves_no_cache(tmp_path):
    write_npz(tmp_path / "mnist.npz", y_train=np.arange(20, dtype=np.int64))  # labels 0..19
    with pytest.raises(DatasetError, match="outside 0..9"):
        _fresh_load(tmp_path)
    assert _cache_folders() == []


def test_one_cache_per_file_and_a_damaged_one_is_rebuilt(tmp_path):
    path = write_npz(tmp_path / "mnist.npz")
    expected = _fresh_load(tmp_path).train.labels.tolist()
    [folder] = _cache_folders()
    # Damaged in three ways: empty, garbage, an array of the wrong shape.
    for damage in (b"", b"\x93NUMPY garbage", None):
        if damage is None:
            np.save(folder / "x_train.npy", np.zeros((3, 5), np.uint8))
        else:
            (folder / "y_train.npy").write_bytes(damage)
        assert _fresh_load(tmp_path).train.labels.tolist() == expected
    # A rewritten file replaces its cache instead of adding another copy.
    write_npz(path, y_train=np.full(20, 3, np.uint8))
    os.utime(path, ns=(1, 1))
    assert _fresh_load(tmp_path).train.labels.tolist() == [3] * 20
    assert _cache_folders() == [folder]


def test_a_text_file_named_npz_is_not_blamed_on_pickles(tmp_path):
    (tmp_path / "mnist.npz").write_text("x_train,y_train\n1,2\n")
    with pytest.raises(DatasetError) as error:
        _fresh_load(tmp_path)
    message = str(error.value)
    assert "mnist.npz is not a NumPy .npz archive" in message and "b'x_train,y_train" in message
    assert "pickle" not in message and len(message.splitlines()) == 1
