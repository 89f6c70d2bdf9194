"""Each paradigm learns (loss falls, its encoder beats a random one) and keeps its promises:
frozen encoders stay frozen, interrupted runs resume, bad input fails clearly."""

import csv
import dataclasses

import keras
import numpy as np
import pytest

from keras_latent import paradigms
from keras_latent.evaluation.metrics import mean_absolute_error
from tests.paradigms.conftest import LATENT_DIM, TINY_CONV, KillAfterEpoch, SimulatedKill


def _falls(values):
    return values[-1] < values[0]


def _test_accuracy(classifier, split):
    logits = classifier.predict(split.images.astype("float32") / 255.0, verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == split.labels))


def _state(model):
    """Every variable, trainable or not (batch-norm moving statistics included)."""
    return [np.array(v) for v in model.weights]


@pytest.fixture(scope="module")
def random_baseline(mnist_small):
    config = paradigms.PROBE_CONFIG.replace(verbose=0, epochs=20)
    run = paradigms.train_random_baseline(
        mnist_small, architecture=TINY_CONV, latent_dim=LATENT_DIM, config=config
    )
    return _test_accuracy(run.model, mnist_small.test)


def test_random_baseline_gets_the_whole_probe_of_the_trained_encoders(mnist_small, monkeypatch):
    # compare.py gives the baseline the autoencoder's probe, augmented copies included.
    from keras_latent.paradigms import probe

    seen = {}
    monkeypatch.setattr(probe, "train_probe", lambda encoder, splits, **kwargs: seen.update(kwargs))
    paradigms.train_random_baseline(mnist_small, architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                    head="mlp", augment="shift_flip", augmented_copies=2)
    assert (seen["head"], seen["augment"], seen["augmented_copies"]) == ("mlp", "shift_flip", 2)


@pytest.fixture(scope="module")
def autoencoder_run(mnist_small):
    # float32: the threshold below was set for it; at this high constant rate a bfloat16 run
    # ends on another (noisier) last epoch. bfloat16 training is tested in test_precision.py.
    config = paradigms.TrainingConfig(epochs=6, batch_size=32, learning_rate=1e-2,
                                      schedule="constant", verbose=0, precision="float32")
    return paradigms.train_autoencoder(
        mnist_small, architecture=TINY_CONV, latent_dim=LATENT_DIM, config=config
    )


def test_autoencoder_learns_to_reconstruct(autoencoder_run, mnist_small):
    assert _falls(autoencoder_run.history["loss"])
    assert _falls(autoencoder_run.history["val_loss"])
    test = mnist_small.test.images.astype("float32") / 255.0
    mae = mean_absolute_error(test, autoencoder_run.model.predict(test, verbose=0))
    blank = mean_absolute_error(test, np.zeros_like(test))
    assert mae < 0.75 * blank


def test_default_mlp_autoencoder_does_not_collapse_to_a_blank_image(data_dir):
    """An MLP autoencoder trained with L1 can settle on the all-black image (MNIST's per-pixel
    median); the default preset and optimiser must not."""
    from keras_latent.data import load_dataset

    splits = load_dataset("mnist", data_dir=data_dir, seed=1).limit(4000, seed=1)
    config = paradigms.TrainingConfig(epochs=5, batch_size=64, verbose=0)  # default optimiser
    run = paradigms.train_autoencoder(splits, architecture="mnist_mlp", latent_dim=32,
                                      config=config)
    test = splits.test.images.astype("float32") / 255.0
    mae = mean_absolute_error(test, run.model.predict(test, verbose=0))
    blank = mean_absolute_error(test, np.zeros_like(test))
    assert mae < 0.6 * blank, f"collapsed: MAE {mae:.4f} vs blank image {blank:.4f}"
    probe = paradigms.train_probe(run.model.encoder, splits,
                                  config=paradigms.PROBE_CONFIG.replace(verbose=0, epochs=15))
    assert _test_accuracy(probe.model, splits.test) > 0.5  # chance is 0.1


def test_probe_on_autoencoder_beats_random_encoder(autoencoder_run, mnist_small, random_baseline):
    encoder = autoencoder_run.model.encoder
    before = _state(encoder)
    probe = paradigms.train_probe(encoder, mnist_small,
                                  config=paradigms.PROBE_CONFIG.replace(verbose=0, epochs=20))
    after = _state(encoder)
    assert all(np.array_equal(b, a) for b, a in zip(before, after)), "probe moved the encoder"
    assert _falls(probe.history["loss"])
    assert _test_accuracy(probe.model, mnist_small.test) > random_baseline
    # The codes it encoded are the encoder's, for the evaluation to reuse.
    for name in ("train", "val"):
        expected = encoder.predict(getattr(mnist_small, name).images / 255.0, verbose=0)
        np.testing.assert_allclose(probe.codes[name], expected, rtol=1e-5, atol=1e-5)


def test_classifier_learns_and_its_encoder_beats_random(mnist_small, fast_config, random_baseline):
    run = paradigms.train_classifier(mnist_small, architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                     config=fast_config)
    assert _falls(run.history["loss"])
    assert _test_accuracy(run.model, mnist_small.test) > random_baseline
    probe = paradigms.train_probe(run.model.encoder, mnist_small,
                                  config=paradigms.PROBE_CONFIG.replace(verbose=0, epochs=20))
    assert _test_accuracy(probe.model, mnist_small.test) > random_baseline


def test_simclr_learns_and_logs_online_knn(mnist_small, tmp_path, random_baseline):
    config = paradigms.TrainingConfig(epochs=4, batch_size=128, learning_rate=2e-3,
                                      warmup_epochs=1, verbose=0, output_dir=str(tmp_path))
    run = paradigms.train_simclr(mnist_small, architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                 projection_hidden=32, projection_dim=16, config=config)
    assert _falls(run.history["loss"])
    assert len(run.history["val_knn_accuracy"]) == 4
    assert (tmp_path / "best.keras").is_file()  # best by val_knn_accuracy
    probe = paradigms.train_probe(run.model.encoder, mnist_small,
                                  config=paradigms.PROBE_CONFIG.replace(verbose=0, epochs=20))
    assert _test_accuracy(probe.model, mnist_small.test) > random_baseline


def test_hybrid_adds_a_falling_reconstruction_loss(mnist_small):
    config = paradigms.TrainingConfig(epochs=3, batch_size=128, learning_rate=2e-3, verbose=0)
    run = paradigms.train_simclr(mnist_small, architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                 projection_hidden=32, projection_dim=16,
                                 reconstruction_weight=1.0, knn_examples=0, config=config)
    assert run.model.decoder is not None
    assert _falls(run.history["reconstruction_loss"])


def test_decoder_on_frozen_encoder_trains_only_the_decoder(autoencoder_run, mnist_small,
                                                         fast_config):
    encoder = keras.models.clone_model(autoencoder_run.model.encoder)
    encoder.set_weights(autoencoder_run.model.encoder.get_weights())
    before = _state(encoder)
    run = paradigms.train_decoder(encoder, mnist_small, architecture=TINY_CONV,
                                  config=fast_config)
    assert _falls(run.history["loss"])
    assert all(np.array_equal(b, a) for b, a in zip(before, _state(encoder)))


def test_few_shot_subset_is_seeded_and_covers_every_class(mnist_small):
    labels = mnist_small.train.labels
    chosen = paradigms.labelled_subset(labels, 100, seed=3)
    assert len(chosen) == len(set(chosen.tolist())) == 100
    assert np.bincount(labels[chosen], minlength=10).min() >= 9
    assert np.array_equal(chosen, paradigms.labelled_subset(labels, 100, seed=3))
    assert not np.array_equal(chosen, paradigms.labelled_subset(labels, 100, seed=4))


def test_few_shot_probe_trains_on_n_labels(autoencoder_run, mnist_small):
    config = paradigms.PROBE_CONFIG.replace(verbose=0, epochs=20, batch_size=10)
    run = paradigms.train_probe(autoencoder_run.model.encoder, mnist_small, num_labels=50,
                                config=config)
    # 50 labelled examples in batches of 10: five optimizer steps per epoch.
    assert int(run.model.head.optimizer.iterations.numpy()) == 20 * 5
    assert set(run.codes) == {"val"}  # a subset's codes are not the train split's
    assert _test_accuracy(run.model, mnist_small.test) > 0.2


def test_interrupted_run_resumes_without_repeating_epochs(mnist_small, tmp_path):
    splits = mnist_small.limit(300, seed=0)
    config = paradigms.TrainingConfig(epochs=4, batch_size=64, verbose=0,
                                      output_dir=str(tmp_path))
    with pytest.raises(SimulatedKill):
        paradigms.train_autoencoder(splits, architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                    config=config.replace(callbacks=(KillAfterEpoch(1),)))
    run = paradigms.train_autoencoder(splits, architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                      config=config)
    with open(tmp_path / "training_log.csv") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f)]
    assert epochs == [0, 1, 2, 3]  # epochs 3 and 4 only were trained on the rerun
    assert len(run.history["loss"]) == 4  # the whole run's history, read back from the log
    assert (tmp_path / "best.keras").is_file()
    assert not list(tmp_path.glob(".*partial*"))


def test_mixed_precision_run_is_finite_and_restores_the_policy(mnist_small):
    config = paradigms.TrainingConfig(epochs=1, batch_size=64, verbose=0, mixed_precision=True)
    run = paradigms.train_classifier(mnist_small.limit(256), architecture=TINY_CONV,
                                     latent_dim=LATENT_DIM, config=config)
    assert np.isfinite(run.history["loss"]).all()
    assert keras.config.dtype_policy().name == "float32"


def test_bad_inputs_fail_with_clear_messages(mnist_small):
    with pytest.raises(ValueError, match="temperature"):
        paradigms.train_simclr(mnist_small.limit(64), architecture=TINY_CONV, temperature=0.0,
                               config=paradigms.TrainingConfig(epochs=1, verbose=0))
    with pytest.raises(ValueError, match="at least 2"):
        paradigms.train_simclr(mnist_small.limit(64), architecture=TINY_CONV,
                               config=paradigms.TrainingConfig(epochs=1, batch_size=1, verbose=0))
    small = mnist_small.limit(64)
    labels = small.train.labels.copy()
    labels[0] = 10
    bad = dataclasses.replace(small, train=dataclasses.replace(small.train, labels=labels))
    with pytest.raises(ValueError, match=r"class indices in \[0, 10\)"):
        paradigms.train_classifier(bad, architecture=TINY_CONV,
                                   config=paradigms.TrainingConfig(epochs=1, verbose=0))
    from keras_latent.models import build_encoder

    rgb_encoder = build_encoder((32, 32, 3), LATENT_DIM, **TINY_CONV)
    with pytest.raises(ValueError, match=r"expects \(32, 32, 3\)"):
        paradigms.train_probe(rgb_encoder, mnist_small)
    encoder = build_encoder(mnist_small.image_shape, LATENT_DIM, **TINY_CONV)
    with pytest.raises(ValueError, match="members must be a positive integer"):
        paradigms.train_probe(encoder, mnist_small.limit(64), members=0)
    with pytest.raises(ValueError, match="epochs"):
        paradigms.TrainingConfig(epochs=0)
