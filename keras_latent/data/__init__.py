"""Data layer: datasets as uint8 arrays, augmentation presets, tf.data pipelines.

See docs/ARCHITECTURE.md for the contracts the other layers rely on.
"""

from keras_latent.data.augment import AUGMENTATION_PRESETS
from keras_latent.data.augment import Augmenter
from keras_latent.data.augment import build_augmentation, mirrors_images, resolve_augmentation
from keras_latent.data.datasets import DATASETS
from keras_latent.data.datasets import DatasetError
from keras_latent.data.datasets import DatasetSplits
from keras_latent.data.datasets import check_classes
from keras_latent.data.datasets import Split
from keras_latent.data.datasets import load_dataset
from keras_latent.data.pipelines import contrastive_dataset
from keras_latent.data.pipelines import encoding_dataset
from keras_latent.data.pipelines import prediction_dataset
from keras_latent.data.pipelines import reconstruction_dataset
from keras_latent.data.pipelines import supervised_dataset

__all__ = [
    "AUGMENTATION_PRESETS",
    "Augmenter",
    "DATASETS",
    "DatasetError",
    "DatasetSplits",
    "Split",
    "build_augmentation",
    "check_classes",
    "resolve_augmentation",
    "contrastive_dataset",
    "encoding_dataset",
    "load_dataset",
    "mirrors_images",
    "prediction_dataset",
    "reconstruction_dataset",
    "supervised_dataset",
]
