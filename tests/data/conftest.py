"""Fixtures the tf.data and array pipeline tests share: a small batch of RGB images, labels and
the SimCLR augmentation."""

import numpy as np
import pytest

from keras_latent.data import build_augmentation


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def labels():
    return np.arange(40) % 10


@pytest.fixture(scope="module")
def augment():
    return build_augmentation("cifar10", "simclr")
