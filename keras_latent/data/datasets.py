"""Image classification datasets as uint8 NumPy arrays, from whichever source is at hand.

Sources are tried in order: an explicit ``data_dir``, the ``KERAS_LATENT_DATA_DIR`` folder,
Keras' own download cache (``~/.keras/datasets``) and, last, TensorFlow Datasets (which
downloads when online). Every problem surfaces as a ``DatasetError`` that names the file or
folder and says how to fix it, never as a deep NumPy/pickle/TensorFlow trace.

Why Keras' cache is read here and not through ``keras.datasets.*.load_data()``: that call
re-downloads unless Keras' archive with Keras' own checksum is in the cache (``get_file``), so
offline it fails on an unpacked folder or on an exact copy saved differently (the shared
``mnist.npz`` is byte-different from Keras' file), where reading the arrays works.

Decompressing ``cifar10.npz`` takes seconds, so arrays are cached per file in-process, and the
decompressed arrays are also kept as plain ``.npy`` files (memory-mapped on the next load) under
``KERAS_LATENT_CACHE_DIR`` (default ``~/.cache/keras_latent``; set it to ``off`` to disable):
one folder per file, written only once its arrays have passed validation, replaced when the
file changes, rebuilt from the file when it is damaged.
"""

import dataclasses
import functools
import gzip
import hashlib
import json
import os
import pickle
import shutil
import socket
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np

from keras_latent.io import atomic_path, write_text_atomic

DATA_DIR_ENV = "KERAS_LATENT_DATA_DIR"
CACHE_DIR_ENV = "KERAS_LATENT_CACHE_DIR"
ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")

_CIFAR10_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)
_IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


class DatasetError(ValueError):
    """A dataset could not be found, read or trusted; the message says which and how to fix it."""


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """Where a dataset lives and what it must look like once loaded."""

    name: str
    file_name: str  # the npz looked for in a data folder
    image_shape: tuple  # (H, W, C) after loading
    class_names: tuple
    tfds_name: str
    keras_cache: tuple  # candidate paths under <keras home>/datasets
    folder_format: str  # "cifar_batches" | "idx": the layout of an unpacked official folder
    folder_names: tuple  # such folders looked for inside a data folder


DATASETS = {
    "mnist": DatasetSpec(
        name="mnist",
        file_name="mnist.npz",
        image_shape=(28, 28, 1),
        class_names=tuple(str(digit) for digit in range(10)),
        tfds_name="mnist",
        keras_cache=("mnist.npz",),
        folder_format="idx",
        folder_names=("mnist",),
    ),
    "fashion_mnist": DatasetSpec(
        name="fashion_mnist",
        file_name="fashion_mnist.npz",
        image_shape=(28, 28, 1),
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        tfds_name="fashion_mnist",
        keras_cache=("fashion-mnist",),
        folder_format="idx",
        folder_names=("fashion-mnist", "fashion_mnist"),
    ),
    "cifar10": DatasetSpec(
        name="cifar10",
        file_name="cifar10.npz",
        image_shape=(32, 32, 3),
        class_names=(
            "airplane", "automobile", "bird", "cat", "deer",
            "dog", "frog", "horse", "ship", "truck",
        ),
        tfds_name="cifar10",
        keras_cache=("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py"),
        folder_format="cifar_batches",
        folder_names=("cifar-10-batches-py",),
    ),
}


# --------------------------------------------------------------------------------------------
# Splits


@dataclasses.dataclass(frozen=True)
class Split:
    """Images (uint8, N x H x W x C) and their integer labels (int64, N)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)

    def take(self, n, seed=None):
        """The first ``n`` examples, or a seeded random sample of ``n`` (kept in original order)."""
        if n < 0:
            raise ValueError(f"take() needs n >= 0, got {n}")
        if n >= len(self):
            return self
        if seed is None:
            index = slice(0, n)
        else:
            index = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return Split(self.images[index], self.labels[index])


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """A dataset's train / validation / test splits and its class names."""

    name: str
    train: Split
    val: Split
    test: Split
    class_names: tuple

    @property
    def image_shape(self):
        return tuple(self.train.images.shape[1:])

    @property
    def num_classes(self):
        return len(self.class_names)

    def limit(self, n, seed=0):
        """Every split capped at ``n`` examples (a seeded sample), for quick runs (``--limit``)."""
        return dataclasses.replace(
            self,
            train=self.train.take(n, seed),
            val=self.val.take(n, seed),
            test=self.test.take(n, seed),
        )


def load_dataset(name, data_dir=None, validation_fraction=0.1, seed=0):
    """Load ``name`` and carve a seeded, disjoint validation split out of its training set."""
    spec = get_spec(name)
    if not 0.0 <= float(validation_fraction) < 1.0:
        raise DatasetError(
            f"validation_fraction must be in [0, 1), got {validation_fraction!r}; "
            "use 0 for no validation split."
        )
    source = _resolve_source(spec, data_dir)
    return _load_splits(spec.name, source, _stamp(source), float(validation_fraction), int(seed))


def load_splits(name, data_dir=None, *, seed=0, limit=None):
    """What every command trains on: ``load_dataset`` with ``seed``, each split capped at
    ``limit`` (a seeded sample; None or 0: all of it), then checked to hold two or more classes
    (``check_classes``). Raises ``DatasetError`` naming the problem and the fix."""
    splits = load_dataset(name, data_dir=data_dir, seed=seed)
    if limit:
        splits = splits.limit(limit, seed=seed)
    check_classes(splits)
    return splits


def get_spec(name):
    """The registry entry for ``name``, or a DatasetError listing the known names."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(DATASETS))
        raise DatasetError(f"Unknown dataset {name!r}; known datasets: {known}.") from None


def _stamp(source):
    """Size and modification time, so a rewritten file is not served from the cache."""
    kind, path = source
    if kind == "tfds":
        return None
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=8)
def _load_splits(name, source, stamp, validation_fraction, seed):
    spec = DATASETS[name]
    x_train, y_train, x_test, y_test = _load_arrays(spec, source, stamp)
    n_val = int(round(len(y_train) * validation_fraction))
    order = np.random.default_rng(seed).permutation(len(y_train))
    # Sorted indices keep the canonical order inside each split (and make fraction 0 a no-op).
    val_index, train_index = np.sort(order[:n_val]), np.sort(order[n_val:])
    if n_val == 0:
        train = Split(x_train, y_train)
    else:
        train = Split(_frozen(x_train[train_index]), _frozen(y_train[train_index]))
    val = Split(_frozen(x_train[val_index]), _frozen(y_train[val_index]))
    return DatasetSplits(spec.name, train, val, Split(x_test, y_test), spec.class_names)


def check_classes(splits):
    """Raise a DatasetError when the training split holds a single class: no classifier or
    probe can learn from it (and the evaluation's logistic probe would fail at the end of a
    run). Called before training, after any ``limit``."""
    classes = np.unique(np.asarray(splits.train.labels))
    if len(classes) < 2:
        found = f"class {classes[0]}" if len(classes) else "no labels"
        raise DatasetError(
            f"the training split of {splits.name} holds {len(splits.train)} image(s) of a "
            f"single {found}; classifiers and probes need at least two classes: use a larger "
            "--limit, or a data file that holds every class."
        )


# --------------------------------------------------------------------------------------------
# Finding a source


def _how_to_provide(spec):
    return (
        f"Put {spec.file_name} (uint8 arrays x_train, y_train, x_test, y_test, e.g. written with "
        f"np.savez_compressed) in a folder and set {DATA_DIR_ENV}=/that/folder, or pass "
        "data_dir=... (--data-dir on the command line)."
    )


def _find_in_folder(spec, folder):
    """(kind, path) of the first usable copy of ``spec`` inside ``folder``, else None."""
    candidates = [("npz", folder / spec.file_name)]
    candidates += [(spec.folder_format, folder / sub) for sub in spec.folder_names]
    candidates.append((spec.folder_format, folder))  # the folder may itself be the unpacked one
    for kind, path in candidates:
        if kind == "npz" and path.is_file():
            return kind, str(path)
        if kind == "cifar_batches" and (path / "data_batch_1").is_file():
            return kind, str(path)
        if kind == "idx" and (path / _IDX_FILES[0]).is_file():
            return kind, str(path)
    return None


def _keras_cache_dirs():
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    # Keras falls back to /tmp/.keras when its home is not writable.
    return [Path(home) / "datasets", Path(tempfile.gettempdir()) / ".keras" / "datasets"]


def _resolve_source(spec, data_dir):
    """A hashable description of where to load ``spec`` from: (kind, path)."""
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not folder.is_dir():
            raise DatasetError(
                f"data_dir {str(folder)!r} does not exist or is not a folder. {_how_to_provide(spec)}"
            )
        found = _find_in_folder(spec, folder)
        if found is None:
            raise DatasetError(
                f"No usable copy of {spec.name} in {str(folder)!r}: expected {spec.file_name}"
                + (f" or an unpacked {spec.folder_names[0]}/ folder" if spec.folder_names else "")
                + f". {_how_to_provide(spec)}"
            )
        return found
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        folder = Path(env_dir).expanduser()
        if not folder.is_dir():
            raise DatasetError(
                f"{DATA_DIR_ENV}={env_dir!r} is not a folder; point it at the folder that holds "
                f"{spec.file_name}, or unset it."
            )
        found = _find_in_folder(spec, folder)
        if found is not None:
            return found
    for cache in _keras_cache_dirs():
        for sub in spec.keras_cache:
            path = cache / sub
            if sub.endswith(".npz") and path.is_file():
                return "npz", str(path)
            if path.is_dir() and _find_in_folder(spec, path) is not None:
                return _find_in_folder(spec, path)
    return "tfds", spec.tfds_name


# --------------------------------------------------------------------------------------------
# Reading and checking arrays


def _frozen(array):
    array.flags.writeable = False  # shared through the cache: nobody may edit it in place
    return array


def _load_arrays(spec, source, stamp):
    kind, path = source
    if kind == "tfds":
        return _checked(spec, _load_tfds(spec), f"TensorFlow Datasets {spec.tfds_name!r}")
    if kind != "npz":
        return _checked(spec, _read_cached(kind, path, *stamp), path)
    arrays, cache = _read_npz(path, *stamp)
    if cache is not None:
        try:
            return _checked(spec, arrays, path)
        except DatasetError:  # a cache gone bad, not the file: rebuild it from the file
            _remove_cache(cache)
            _read_npz.cache_clear()
            arrays, cache = _read_npz(path, *stamp, use_cache=False)
    checked = _checked(spec, arrays, path)  # raises, naming the file, before anything is cached
    _write_decompressed_cache(_decompressed_cache(path), arrays, _cache_stamp(path, *stamp))
    return checked


@functools.lru_cache(maxsize=8)
def _read_cached(kind, path, size, mtime_ns):
    """Raw arrays of an unpacked folder; ``size`` / ``mtime_ns`` make a rewritten one a miss."""
    if kind == "cifar_batches":
        return _read_cifar_batches(Path(path))
    return _read_idx_folder(Path(path))


@functools.lru_cache(maxsize=8)
def _read_npz(path, size, mtime_ns, use_cache=True):
    """``(arrays, cache folder)`` of an ``.npz``: from its decompressed cache when that is whole
    and of this version of the file (folder returned), else from the file (``None``)."""
    cache = _decompressed_cache(path) if use_cache else None
    if cache is not None:
        try:
            if _cache_is_fresh(cache, _cache_stamp(path, size, mtime_ns)):
                return tuple(np.load(cache / f"{key}.npy", mmap_mode="r", allow_pickle=False)
                             for key in ARRAY_KEYS), cache
        except Exception:  # noqa: BLE001 - any damage to a cache only means rebuilding it
            pass
    try:
        with open(path, "rb") as handle:
            start = handle.read(16)
    except OSError as error:
        raise DatasetError(f"{path} cannot be read ({error}); check its permissions.") from error
    if not start.startswith(b"PK"):  # not even the start of a zip (a truncated one is below)
        raise DatasetError(
            f"{path} is not a NumPy .npz archive (an .npz is a zip file; this one starts with "
            f"{start!r}); copy or download it again, or re-create it with "
            "np.savez_compressed(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        )
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in ARRAY_KEYS if key not in archive.files]
            if missing:
                raise DatasetError(
                    f"{path} lacks the arrays {missing} (has {sorted(archive.files)}); "
                    "re-create it with np.savez_compressed(path, x_train=..., y_train=..., "
                    "x_test=..., y_test=...)."
                )
            arrays = tuple(archive[key] for key in ARRAY_KEYS)
    except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError, KeyError) as error:
        if isinstance(error, DatasetError):
            raise
        raise DatasetError(
            f"{path} is not a readable NumPy .npz archive (corrupt or truncated: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}); copy or "
            "download it again."
        ) from error
    return arrays, None


#: Written last into a cache folder: the source file's path, size and mtime the arrays are of.
_CACHE_STAMP = "source.json"


def _cache_stamp(path, size, mtime_ns):
    return {"path": os.path.abspath(path), "size": size, "mtime_ns": mtime_ns}


def _cache_is_fresh(folder, stamp) -> bool:
    try:
        with open(folder / _CACHE_STAMP) as handle:
            return json.load(handle) == stamp
    except (OSError, ValueError):
        return False


def _decompressed_cache(path):
    """The cache folder of the file at ``path`` (one per file, whatever its version), or None
    when caching is off."""
    root = os.environ.get(CACHE_DIR_ENV)
    if root and root.lower() in ("off", "0", "none", "false"):
        return None
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(xdg, "keras_latent")
    key = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:16]
    return Path(root) / f"{Path(path).stem}-{key}"


def _remove_cache(folder):
    shutil.rmtree(folder, ignore_errors=True)


def _write_decompressed_cache(folder, arrays, stamp):
    """Best effort: a read-only home or a full disk only costs speed next time.

    Called only for arrays that passed validation. One folder per source file: a new version
    replaces the old one's arrays (the stamp is removed first and written last, so a reader
    never takes a half-written folder for whole). Folders of the layout before this one (one
    per file version, no stamp) are left to whoever wrote them: an older version of this
    package may still use them."""
    if folder is None or _cache_is_fresh(folder, stamp):
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / _CACHE_STAMP).unlink(missing_ok=True)
        for key, array in zip(ARRAY_KEYS, arrays):
            with atomic_path(folder / f"{key}.npy", suffix=".npy") as temporary:
                np.save(temporary, np.asarray(array), allow_pickle=False)
        write_text_atomic(folder / _CACHE_STAMP, json.dumps(stamp))
    except OSError:
        pass  # atomic_path removed the temporary file: a full disk leaves no half array


def _read_cifar_batches(folder):
    missing = [name for name in _CIFAR10_BATCHES if not (folder / name).is_file()]
    if missing:
        raise DatasetError(
            f"CIFAR-10 batches folder {folder} lacks {missing}; unpack the complete "
            "cifar-10-python.tar.gz there, or provide cifar10.npz instead."
        )
    parts = []
    for name in _CIFAR10_BATCHES:
        try:
            # The official format is a pickle; only read folders you trust (as keras does).
            with open(folder / name, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            rows = np.asarray(batch[b"data"], dtype=np.uint8)
            labels = np.asarray(batch[b"labels"])
            images = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # channel-first rows -> NHWC
        except (pickle.UnpicklingError, EOFError, OSError, KeyError, TypeError, ValueError) as error:
            raise DatasetError(
                f"{folder / name} is not a readable CIFAR-10 python batch ({error!r}); "
                "unpack cifar-10-python.tar.gz again."
            ) from error
        parts.append((images, labels))
    x_train = np.ascontiguousarray(np.concatenate([images for images, _ in parts[:-1]]))
    y_train = np.concatenate([labels for _, labels in parts[:-1]])
    return x_train, y_train, np.ascontiguousarray(parts[-1][0]), parts[-1][1]


def _read_idx_folder(folder):
    """The four gzipped IDX files of MNIST / Fashion-MNIST, as keras downloads them."""
    arrays = []
    for name in _IDX_FILES:
        path = folder / name
        try:
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        except (OSError, EOFError, zlib.error) as error:
            raise DatasetError(f"{path} is missing or not a readable gzip file ({error}).") from error
        if "images" in name:
            arrays.append(np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28))
        else:
            arrays.append(np.frombuffer(raw, np.uint8, offset=8))
    return tuple(arrays)


#: Where TensorFlow Datasets downloads these datasets from; probed before a download because
#: an offline download retries for minutes instead of failing.
TFDS_DOWNLOAD_HOST = ("storage.googleapis.com", 443)


def _online(address=TFDS_DOWNLOAD_HOST, timeout=5.0) -> bool:
    try:
        socket.create_connection(address, timeout=timeout).close()
        return True
    except OSError:
        return False


@functools.lru_cache(maxsize=4)
def _load_tfds(spec):
    """The whole dataset through TensorFlow Datasets (downloads when online)."""
    try:
        import tensorflow_datasets as tfds

        if not tfds.builder(spec.tfds_name).is_prepared() and not _online():
            raise ConnectionError("offline: the download host cannot be reached")
        train, test = tfds.as_numpy(
            tfds.load(spec.tfds_name, split=["train", "test"], batch_size=-1, as_supervised=True)
        )
    except Exception as error:  # noqa: BLE001 - offline, missing package, broken download...
        raise DatasetError(
            f"No local copy of {spec.name} was found ({DATA_DIR_ENV} unset or without "
            f"{spec.file_name}, nothing in Keras' cache ~/.keras/datasets) and TensorFlow Datasets "
            f"could not provide it ({type(error).__name__}: {error}). {_how_to_provide(spec)}"
        ) from error
    return train[0], train[1], test[0], test[1]


def _checked(spec, arrays, where):
    """Arrays in the project's layout (uint8 NHWC, int64 labels), or a DatasetError naming ``where``."""
    x_train, y_train, x_test, y_test = arrays
    out = []
    for split, images, labels in (("train", x_train, y_train), ("test", x_test, y_test)):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8:
            raise DatasetError(
                f"{where}: x_{split} has dtype {images.dtype}, expected uint8 pixels 0..255; "
                "re-create the file from the original bytes."
            )
        if images.ndim == 3 and spec.image_shape[-1] == 1:
            images = images[..., np.newaxis]
        if images.ndim != 4 or tuple(images.shape[1:]) != spec.image_shape or len(images) == 0:
            raise DatasetError(
                f"{where}: x_{split} has shape {images.shape}, expected (N, "
                f"{', '.join(map(str, spec.image_shape))}) for {spec.name} with N > 0."
            )
        if labels.ndim == 2 and labels.shape[1] == 1:
            labels = labels[:, 0]
        if labels.ndim != 1 or len(labels) != len(images) or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(
                f"{where}: y_{split} has shape {labels.shape} and dtype {labels.dtype}, expected "
                f"{len(images)} integer labels, one per image."
            )
        if labels.min() < 0 or labels.max() >= len(spec.class_names):
            raise DatasetError(
                f"{where}: y_{split} holds labels {labels.min()}..{labels.max()}, outside "
                f"0..{len(spec.class_names) - 1} for {spec.name}."
            )
        out += [_frozen(np.asarray(images)), _frozen(labels.astype(np.int64))]
    return tuple(out)
