"""A tiny MNIST slice and a tiny search space, shared by the tuning tests (2-core CI)."""

import pytest

LIMIT = 200


@pytest.fixture(scope="session")
def mnist_tiny(data_dir):
    from keras_latent.data import load_dataset

    return load_dataset("mnist", data_dir=data_dir, seed=0).limit(LIMIT, seed=0)


@pytest.fixture(scope="session")
def tiny_space():
    from tuning.hypermodels import EncoderSpace

    return EncoderSpace(min_depth=1, max_depth=2, kernel_sizes=(3, 5), min_channels=4,
                        max_channels=8, latent_dims=(8,))


@pytest.fixture(scope="session")
def tiny_config():
    from keras_latent.paradigms import TrainingConfig

    return TrainingConfig(epochs=1, batch_size=64, verbose=0, seed=0)
