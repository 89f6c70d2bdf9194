"""``TrainingConfig(tensorboard=...)`` leaves TensorBoard event files, written with TensorFlow
alone, that hold each phase's epoch scalars, its learning rate and, for the autoencoder, its
reconstructions of a few validation images."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_latent.paradigms import PROBE_CONFIG, TrainingConfig, train_autoencoder, train_probe
from tests.paradigms.conftest import LATENT_DIM, TINY_CONV


def read_events(folder) -> dict:
    """{tag: [(step, value proto, plugin name), ...]} of every event file in ``folder``."""
    events = {}
    files = sorted(Path(folder).glob("events.out.tfevents.*"))
    assert files, f"no event file in {folder}"
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                events.setdefault(value.tag, []).append(
                    (event.step, value, value.metadata.plugin_data.plugin_name))
    return events


def scalars(events, tag) -> list:
    assert all(plugin == "scalars" for _, _, plugin in events[tag]), tag
    return [float(tf.make_ndarray(value.tensor)) for _, value, _ in sorted(
        events[tag], key=lambda item: item[0])]


@pytest.fixture(scope="module")
def logged_run(mnist_small, tmp_path_factory):
    """A 2-epoch autoencoder, then a 2-epoch probe, logging to one TensorBoard folder."""
    root = tmp_path_factory.mktemp("tensorboard")
    splits = mnist_small.limit(300, seed=0)
    config = TrainingConfig(epochs=2, batch_size=64, learning_rate=2e-3, verbose=0,
                            precision="float32", tensorboard=str(root))
    run = train_autoencoder(splits, architecture=TINY_CONV, latent_dim=LATENT_DIM, config=config)
    probe = train_probe(run.model.encoder, splits, config=PROBE_CONFIG.replace(
        epochs=2, verbose=0, tensorboard=str(root)))
    return root, splits, run, probe


def test_epoch_scalars_and_the_learning_rate_are_logged_per_phase(logged_run):
    root, _, run, probe = logged_run
    train = read_events(root / "autoencoder" / "train")
    np.testing.assert_allclose(scalars(train, "epoch_loss"), run.history["loss"], rtol=1e-6)
    assert len(scalars(train, "epoch_mae")) == 2
    rates = scalars(train, "epoch_learning_rate")
    assert 0 < rates[1] < rates[0] < 2e-3  # the cosine schedule, read at each epoch's end
    validation = read_events(root / "autoencoder" / "validation")
    np.testing.assert_allclose(scalars(validation, "epoch_loss"), run.history["val_loss"],
                               rtol=1e-6)
    probe_train = read_events(root / "probe" / "train")
    np.testing.assert_allclose(scalars(probe_train, "epoch_accuracy"),
                               probe.history["accuracy"], rtol=1e-6)
    assert len(scalars(probe_train, "epoch_learning_rate")) == 2
    assert "reconstructions" not in read_events(root / "probe" / "validation")


def test_autoencoder_logs_its_reconstructions_as_images(logged_run):
    root, splits, _, _ = logged_run
    images = read_events(root / "autoencoder" / "validation")["reconstructions"]
    assert sorted(step for step, _, _ in images) == [0, 1]
    assert {plugin for _, _, plugin in images} == {"images"}
    width, height, png = tf.make_ndarray(images[-1][1].tensor)
    picture = tf.io.decode_png(png).numpy()
    rows, columns, channels = splits.image_shape
    # Eight validation images, each beside its reconstruction.
    assert (int(width), int(height)) == (2 * columns, 8 * rows)
    assert picture.shape == (8 * rows, 2 * columns, channels)
    originals = picture[:, :columns]
    expected = np.concatenate(list(splits.val.images[:8]), axis=0)
    assert np.abs(originals.astype(int) - expected.astype(int)).max() <= 1


def test_tensorboard_true_needs_a_folder():
    with pytest.raises(ValueError, match="tensorboard=True writes under output_dir"):
        TrainingConfig(tensorboard=True)
    config = TrainingConfig(tensorboard=True, output_dir="runs/x")
    assert config.tensorboard_dir == Path("runs/x/tensorboard")
    assert TrainingConfig().tensorboard_dir is None
