"""Small real MNIST slices and a tiny architecture, shared by the paradigm tests."""

import keras
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


class SimulatedKill(RuntimeError):
    """What ``KillAfterEpoch`` raises: a process dying right after an epoch's state is saved."""


class KillAfterEpoch(keras.callbacks.Callback):
    """Stops ``fit`` like a kill at the end of epoch ``epoch`` (0-based), after the callbacks
    before it (checkpoint, resume state, CSV log) have written that epoch."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise SimulatedKill(f"simulated kill after epoch {epoch}")
