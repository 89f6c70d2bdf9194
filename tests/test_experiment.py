"""What the experiments (``keras_latent.experiments``) put in their reports; the phase-by-phase
resumption is in ``tests/paradigms/test_faults.py``."""

import pytest


@pytest.fixture(scope="module")
def cifar_small(data_dir):
    from keras_latent.data import load_dataset

    return load_dataset("cifar10", data_dir=data_dir).limit(300, seed=0)


def test_a_cifar_report_scores_flip_tta_and_keeps_the_runs_seed(cifar_small, tmp_path):
    """On CIFAR-10 the report gives the probe's accuracy plain (the headline) and with flip TTA
    (on MNIST, where a mirrored digit is another image, it does not: see test_faults). One
    experiment run checks both, to keep the suite short: the evaluation is seeded with the
    run's seed, not always 0."""
    from keras_latent import experiments, paradigms
    from tests.paradigms.conftest import LATENT_DIM, TINY_CONV

    config = paradigms.TrainingConfig(epochs=1, batch_size=64, verbose=0, precision="float32",
                                      seed=3)
    metrics = experiments.random_baseline_experiment(
        cifar_small, tmp_path, architecture=TINY_CONV, latent_dim=LATENT_DIM, config=config,
        probe_config=paradigms.PROBE_CONFIG.replace(epochs=2), tsne=30)
    plain, tta = metrics["accuracy"], metrics["accuracy_flip_tta"]
    assert tta["train"] is None and 0.0 <= tta["test"] <= 1.0 and 0.0 <= tta["val"] <= 1.0
    assert plain["test"] is not None
    # The evaluation is seeded with the run's seed, and the report says so once, not 0 and 3.
    assert metrics["seed"] == metrics["run"]["seed"] == 3
    assert "seed 3." in (tmp_path / "report.md").read_text()
