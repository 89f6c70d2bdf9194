"""The in-process findings of a fault set run from outside (issue 32): a diverged model saved as
the best, a resumed run that sees the first epoch's data again, a probe seeded by what ran before
it, a torn training log, SimCLR stuck at chance, the epochs a resumed rerun records."""

import numpy as np
import pytest

from tests.paradigms.conftest import LATENT_DIM, TINY_CONV, KillAfterEpoch, SimulatedKill


def _weights_equal(model_a, model_b):
    for a, b in zip(model_a.get_weights(), model_b.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------- a resumed run sees the same epochs (item 6)


@pytest.mark.parametrize("paradigm", ["autoencoder", "classifier"])
def test_a_resumed_run_trains_what_the_uninterrupted_run_trains(mnist_small, tmp_path,
                                                                paradigm):
    """Epoch k of a resumed run gets epoch k's shuffle and augmentation, not epoch 1's again:
    killed after epoch 2 of 3 and resumed, the weights equal an uninterrupted run's exactly."""
    from keras_latent import paradigms

    splits = mnist_small.limit(300, seed=0)
    train = {"autoencoder": paradigms.train_autoencoder,
             "classifier": paradigms.train_classifier}[paradigm]

    def run(folder, kill=None):
        config = paradigms.TrainingConfig(
            epochs=3, batch_size=64, verbose=0, seed=0, output_dir=str(folder),
            callbacks=(KillAfterEpoch(kill),) if kill is not None else ())
        return train(splits, architecture=TINY_CONV, latent_dim=LATENT_DIM, augment="light",
                     config=config)

    straight = run(tmp_path / "straight")
    with pytest.raises(SimulatedKill):
        run(tmp_path / "killed", kill=1)
    resumed = run(tmp_path / "killed")
    assert resumed.history["loss"] == straight.history["loss"]
    _weights_equal(resumed.model, straight.model)
