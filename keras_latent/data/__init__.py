"""Data layer: datasets as uint8 arrays, augmentation presets, input pipelines.

The pipeline builders run on tf.data where TensorFlow is installed (on every Keras backend) and
as ``keras.utils.PyDataset``s over the arrays elsewhere; ``input_pipeline()`` says which.
Importing this package imports no TensorFlow. See docs/ARCHITECTURE.md for the contracts the
other layers rely on.
"""

import functools
import importlib
import os

from keras_latent.data import arrays
from keras_latent.data.augment import AUGMENTATION_PRESETS
from keras_latent.data.augment import Augmenter
from keras_latent.data.augment import build_augmentation, mirrors_images, resolve_augmentation
from keras_latent.data.datasets import DATASETS
from keras_latent.data.datasets import DatasetError
from keras_latent.data.datasets import DatasetSplits
from keras_latent.data.datasets import check_classes
from keras_latent.data.datasets import Split
from keras_latent.data.datasets import load_dataset
from keras_latent.data.datasets import load_splits

PIPELINES = ("tf.data", "arrays")


def input_pipeline() -> str:
    """Which pipelines the builders below return: ``"tf.data"`` or ``"arrays"``.

    ``KERAS_LATENT_INPUT=tf.data|arrays`` chooses; unset (or ``auto``), tf.data when TensorFlow
    can be imported, as Keras feeds tf.data to every backend (and the TensorFlow augmentation is
    the measured, reproducible one), else the arrays (``arrays.py``: augmentation on the device,
    no TensorFlow). On a GPU with JAX or PyTorch, ``arrays`` also moves the augmentation from
    the CPU to the GPU.
    """
    choice = os.environ.get("KERAS_LATENT_INPUT", "auto").strip() or "auto"
    if choice not in (*PIPELINES, "auto"):
        raise ValueError(f"KERAS_LATENT_INPUT must be one of {[*PIPELINES, 'auto']}, got {choice!r}.")
    if choice == "auto":
        from keras_latent.backend import tensorflow_installed

        return "tf.data" if tensorflow_installed() else "arrays"
    return choice


def _pipelines():
    if input_pipeline() == "arrays":
        return arrays
    try:
        return importlib.import_module("keras_latent.data.pipelines")
    except ImportError as error:
        raise ImportError(
            f"KERAS_LATENT_INPUT=tf.data needs TensorFlow ({error}); install it "
            "(pip install tensorflow) or set KERAS_LATENT_INPUT=arrays."
        ) from error


def _dispatched(name):
    """The builder ``name`` of the pipelines ``input_pipeline()`` chooses, at each call."""
    @functools.wraps(getattr(arrays, name))
    def build(*args, **kwargs):
        return getattr(_pipelines(), name)(*args, **kwargs)

    return build


reconstruction_dataset = _dispatched("reconstruction_dataset")
supervised_dataset = _dispatched("supervised_dataset")
contrastive_dataset = _dispatched("contrastive_dataset")
encoding_dataset = _dispatched("encoding_dataset")
prediction_dataset = _dispatched("prediction_dataset")

__all__ = [
    "AUGMENTATION_PRESETS",
    "Augmenter",
    "DATASETS",
    "DatasetError",
    "DatasetSplits",
    "PIPELINES",
    "Split",
    "build_augmentation",
    "check_classes",
    "contrastive_dataset",
    "encoding_dataset",
    "input_pipeline",
    "load_dataset",
    "load_splits",
    "mirrors_images",
    "prediction_dataset",
    "reconstruction_dataset",
    "resolve_augmentation",
    "supervised_dataset",
]
