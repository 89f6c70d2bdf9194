"""Small real MNIST slices and a tiny architecture, shared by the paradigm tests."""

import pytest

#: Small enough for a 2-core CI, large enough that a trained encoder beats a random one.
TINY_CONV = {"kind": "conv", "channels": [8, 16], "kernel_sizes": 3, "strides": 2,
             "batch_norm": True}
LATENT_DIM = 16


@pytest.fixture(scope="session")
def mnist_small(data_dir):
    from keras_latent.data import load_dataset

    return load_dataset("mnist", data_dir=data_dir, validation_fraction=0.1, seed=0).limit(
        1500, seed=0
    )


@pytest.fixture
def fast_config(tmp_path):
    from keras_latent.paradigms import TrainingConfig

    return TrainingConfig(epochs=3, batch_size=64, learning_rate=2e-3, verbose=0, seed=0)
