"""Nothing is lost under faults (issue 14): a kill or a full disk while the resume state or a
checkpoint is written, a resume after a better epoch, a diverged run, leftovers of a killed save.

Kills are simulated in process: a callback that raises after an epoch's state is on disk, and
writers patched to leave half a file and fail, as a kill or a full disk would."""

import errno
import json
import os
import stat
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_latent.paradigms.callbacks import AtomicBackupAndRestore, default_callbacks
from tests.paradigms.conftest import KillAfterEpoch, SimulatedKill


class _ScriptedValLoss(keras.callbacks.Callback):
    """Sets ``val_loss`` to a scripted value per epoch (placed before the checkpoint)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        if epoch in self.values:
            logs["val_loss"] = self.values[epoch]


def _tiny_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _fit(folder, epochs, *, values=None, kill_after=None, model=None):
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 4), dtype=np.float32), rng.random((32, 1), dtype=np.float32)
    model = model or _tiny_model()
    extra = [KillAfterEpoch(kill_after)] if kill_after is not None else []
    monitors = [_ScriptedValLoss(values)] if values else []
    history = model.fit(x, y, validation_data=(x, y), epochs=epochs, batch_size=8, verbose=0,
                        callbacks=default_callbacks(folder, monitors=monitors, extra=extra))
    return model, history.history


def _identity(path):
    status = os.stat(path)
    return status.st_ino, status.st_mtime_ns


def _half(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# ------------------------------------------------------------------- resume state (item 1)


def test_truncated_latest_state_resumes_from_the_previous_epoch(tmp_path):
    with pytest.raises(SimulatedKill):
        _fit(tmp_path, 4, kill_after=2)
    backup = tmp_path / "backup"
    _half(backup / "latest.weights.h5")  # what a kill or full disk in Keras' in-place write left
    with pytest.warns(UserWarning, match="one before it"):
        _, history = _fit(tmp_path, 4)
    assert len(history["loss"]) == 2  # epochs 3 and 4: the state after epoch 2 was used


def test_unreadable_resume_state_starts_over_instead_of_failing_every_rerun(tmp_path):
    with pytest.raises(SimulatedKill):
        _fit(tmp_path, 3, kill_after=1)
    backup = tmp_path / "backup"
    for name in ("latest.weights.h5", "latest.weights.h5.bkp"):
        _half(backup / name)
    (backup / "training_metadata.json").write_text('{"epo')
    with pytest.warns(UserWarning, match="starts over"):
        model, history = _fit(tmp_path, 3)
    assert len(history["loss"]) == 3
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_a_failed_backup_write_keeps_the_previous_state(tmp_path, monkeypatch):
    model = _tiny_model()
    backup = AtomicBackupAndRestore(str(tmp_path))
    backup.set_model(model)
    backup.on_epoch_end(0, {"loss": 1.0})
    saved = {name: (tmp_path / name).read_bytes()
             for name in ("latest.weights.h5", "training_metadata.json")}

    def disk_full(filepath, overwrite=True):
        with open(filepath, "wb") as handle:
            handle.write(b"\x89HDF\r\n")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(model, "save_weights", disk_full)
    with pytest.raises(OSError, match="No space"):
        backup.on_epoch_end(1, {"loss": 0.5})
    for name, data in saved.items():
        assert (tmp_path / name).read_bytes() == data
    assert not list(tmp_path.glob(".*"))  # no temporary file left


# ------------------------------------------------------------ best checkpoint (item 2)


@pytest.mark.parametrize("state_file", [True, False], ids=["state-file", "csv-log"])
def test_resumed_run_does_not_overwrite_a_better_checkpoint(tmp_path, state_file):
    with pytest.raises(SimulatedKill):
        _fit(tmp_path, 4, values={0: 0.5, 1: 0.3}, kill_after=1)
    best = tmp_path / "best.keras"
    assert json.loads((tmp_path / "best.json").read_text())["best"] == pytest.approx(0.3)
    if not state_file:  # a run killed before writing it, or one of an older version
        (tmp_path / "best.json").unlink()
    before = _identity(best)
    _fit(tmp_path, 4, values={2: 0.9, 3: float("nan")})  # worse, then diverged
    assert _identity(best) == before


def test_a_nan_epoch_is_never_saved_as_the_best(tmp_path):
    _fit(tmp_path, 1, values={0: float("nan")})
    assert not (tmp_path / "best.keras").exists()


def test_checkpoints_honour_the_umask(tmp_path):
    previous = os.umask(0o022)
    try:
        _fit(tmp_path, 1)
    finally:
        os.umask(previous)
    for name in ("best.keras", "best.json"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


# ----------------------------------------------------------------- leftovers (item 6)


def test_leftovers_of_killed_saves_are_removed_when_a_run_starts(tmp_path):
    leftovers = [tmp_path / ".best.k3j2l1x0.tmp.keras", tmp_path / ".best.keras.partial.keras",
                 tmp_path / ".best.a8s7d6f5.tmp.json"]
    for path in leftovers:
        path.write_bytes(b"")
    keep = tmp_path / "notes.tmp"
    keep.write_text("not ours")
    _fit(tmp_path, 1)
    assert not [path for path in leftovers if path.exists()]
    assert keep.exists()


# ------------------------------------------------------------------ diverged runs (item 3)


class _BlowUp(keras.callbacks.Callback):
    """Sets the weights to NaN at the first batch of ``epoch``, as a too-high learning rate
    would (one NaN kernel is not enough: ReLU turns NaN into 0 on the CPU)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.current = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_begin(self, batch, logs=None):
        if self.current == self.epoch and batch == 0:
            for variable in self.model.trainable_variables:
                variable.assign(np.full(variable.shape, np.nan, dtype=variable.dtype))


def test_a_diverged_run_keeps_the_good_files_and_says_so(mnist_small, tmp_path):
    from keras_latent import experiments, paradigms
    from tests.paradigms.conftest import LATENT_DIM, TINY_CONV

    good = tmp_path / "autoencoder.keras"
    good.write_bytes(b"an earlier good model")
    config = paradigms.TrainingConfig(epochs=2, batch_size=64, verbose=0,
                                      callbacks=(_BlowUp(epoch=1),))
    with pytest.raises(experiments.TrainingDiverged,
                       match=r"loss was nan in epoch 2.*last good model is .*best\.keras"):
        experiments.autoencoder_experiment(mnist_small.limit(200, seed=0), tmp_path,
                                          architecture=TINY_CONV, latent_dim=LATENT_DIM,
                                          config=config, tsne=50)
    assert good.read_bytes() == b"an earlier good model"
    assert not (tmp_path / "probe.keras").exists() and not (tmp_path / "metrics.json").exists()
    from keras_latent.models import load_model

    best = load_model(tmp_path / "checkpoints" / "best.keras")  # the epoch-1 model, finite
    assert all(np.isfinite(w).all() for w in best.get_weights())


@pytest.mark.parametrize("learning_rate", [0.0, -1e-3, float("inf"), float("nan")])
def test_a_learning_rate_that_cannot_train_is_refused_up_front(learning_rate):
    from keras_latent.paradigms import TrainingConfig

    with pytest.raises(ValueError, match="learning_rate must be finite and > 0"):
        TrainingConfig(learning_rate=learning_rate)


@pytest.mark.parametrize("error, status, words", [
    ("diverged", 2, "error: autoencoder training diverged"),
    ("another run", 2, "error: run/checkpoints/backup holds the resume state of another run"),
    (KeyboardInterrupt, 130, "run the same command again to resume"),
])
def test_a_recipe_ends_with_one_line_and_its_status(capsys, monkeypatch, error, status, words):
    from keras_latent import experiments
    from keras_latent.paradigms.callbacks import ResumeStateError

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "recipes"))
    from _plumbing import run_recipe

    def main(argv):
        if error is KeyboardInterrupt:
            raise KeyboardInterrupt
        if error == "another run":
            raise ResumeStateError("run/checkpoints/backup holds the resume state of another "
                                   "run (a Classifier model, ...)")
        raise experiments.TrainingDiverged("autoencoder training diverged (the loss was nan)")

    with pytest.raises(SystemExit) as exit_:
        run_recipe(main, [])
    assert exit_.value.code == status
    message = capsys.readouterr().err.strip()
    assert words in message and len(message.splitlines()) == 1


# ------------------------------------------- short runs (item 8) and stuck runs (item 9)


def test_batch_norm_momentum_fits_the_length_of_the_run():
    from keras_latent.models import build_encoder
    from keras_latent.paradigms.fitting import architecture_config, bn_momentum_for

    # --quick: 2000 images, batch 128, one epoch = 16 steps; Keras' 0.99 would leave 85 % of
    # the initial statistics in the model that is evaluated.
    short = architecture_config("mnist_conv", total_steps=16)
    assert short["bn_momentum"] == pytest.approx(bn_momentum_for(16))
    assert 0.01 ** (1 / 16) == pytest.approx(short["bn_momentum"]) and short["bn_momentum"] < 0.8
    assert architecture_config("mnist_conv", total_steps=10_000)["bn_momentum"] == 0.99
    assert "bn_momentum" not in architecture_config("mnist_conv")  # builders' default
    assert architecture_config("cifar_fast", total_steps=16)["bn_momentum"] == 0.4  # its own
    assert "bn_momentum" not in architecture_config("mnist_mlp", total_steps=16)
    encoder = build_encoder((28, 28, 1), 8, **short)
    momenta = {layer.momentum for layer in encoder.layers
               if isinstance(layer, keras.layers.BatchNormalization)}
    assert momenta == {short["bn_momentum"]}


def test_a_training_loss_that_does_not_move_is_reported():
    import tensorflow as tf

    from keras_latent.paradigms import TrainingConfig
    from keras_latent.paradigms.fitting import fit

    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.random((32, 4), dtype=np.float32), rng.random((32, 1), dtype=np.float32))).batch(8)
    config = TrainingConfig(epochs=3, verbose=0, schedule="constant", learning_rate=0.05)
    frozen = _tiny_model()
    frozen.trainable = False
    frozen.compile(optimizer="adam", loss="mse")
    with pytest.warns(UserWarning, match="did not move over 3 epochs"):
        fit(frozen, data, None, config, monitor="loss", mode="min")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(_tiny_model(), data, None, config, monitor="loss", mode="min")


# ------------------------------------- killed after the last epoch, fewer --epochs (item 4)


def _two_layers(width):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width),
                              keras.layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _paradigm_fit(folder, epochs, *, kill_after=None, width=1, keep=False):
    """``fitting.fit`` (what every paradigm calls) on a tiny model with its folder."""
    import tensorflow as tf

    from keras_latent.paradigms import TrainingConfig
    from keras_latent.paradigms.fitting import fit

    rng = np.random.default_rng(0)
    data = tf.data.Dataset.from_tensor_slices(
        (rng.random((32, 4), dtype=np.float32), rng.random((32, 1), dtype=np.float32))).batch(8)
    model = _two_layers(width)
    config = TrainingConfig(epochs=epochs, verbose=0, output_dir=str(folder),
                            keep_resume_state=keep,
                            callbacks=(KillAfterEpoch(kill_after),) if kill_after is not None
                            else ())
    return model, fit(model, data, data, config, monitor="val_loss", mode="min")


def test_a_run_killed_after_its_last_epoch_finishes_with_the_whole_history(tmp_path):
    with pytest.raises(SimulatedKill):
        _paradigm_fit(tmp_path, 3, kill_after=2)  # the state is saved, fit never returned
    trained = _two_layers(1)
    trained.optimizer.build(trained.trainable_variables)
    trained.load_weights(tmp_path / "backup" / "latest.weights.h5")
    model, history = _paradigm_fit(tmp_path, 3)
    assert len(history["loss"]) == len(history["val_loss"]) == 3  # read back from the log
    log = (tmp_path / "training_log.csv").read_text().splitlines()
    assert len(log) == 4  # header + 3 epochs: nothing was trained again
    for restored, expected in zip(model.get_weights(), trained.get_weights()):
        np.testing.assert_array_equal(restored, expected)
    assert not (tmp_path / "backup").exists()


def test_a_rerun_with_fewer_epochs_says_so_and_keeps_the_trained_model(tmp_path):
    with pytest.raises(SimulatedKill):
        _paradigm_fit(tmp_path, 3, kill_after=2)
    with pytest.warns(UserWarning, match="had finished 3 epochs, more than the 2 asked for"):
        _, history = _paradigm_fit(tmp_path, 2)
    assert len(history["loss"]) == 3


def test_a_kept_resume_state_outlives_fit_until_discarded(tmp_path):
    from keras_latent.paradigms.callbacks import discard_resume_state

    _paradigm_fit(tmp_path, 2, keep=True)
    assert (tmp_path / "backup" / "latest.weights.h5").is_file()
    _, history = _paradigm_fit(tmp_path, 2, keep=True)  # killed before the results: no work
    assert len(history["loss"]) == 2
    discard_resume_state(tmp_path)
    assert not (tmp_path / "backup").exists()


# ---------------------------------------------- another run's resume state (item 7)


def test_another_runs_resume_state_is_named_and_left_alone(tmp_path):
    from keras_latent.paradigms.callbacks import ResumeStateError

    with pytest.raises(SimulatedKill):
        _paradigm_fit(tmp_path, 3, kill_after=0, width=3)
    saved = {path.name: path.read_bytes() for path in (tmp_path / "backup").iterdir()}
    with pytest.raises(ResumeStateError) as error:
        _paradigm_fit(tmp_path, 3, width=5)
    message = str(error.value)
    assert len(message.splitlines()) == 1
    assert "another run (a Sequential model of other layer sizes" in message
    assert "after epoch 1" in message and "--output" in message and "delete" in message
    assert {path.name: path.read_bytes() for path in (tmp_path / "backup").iterdir()} == saved
    _, history = _paradigm_fit(tmp_path, 3, width=3)  # its own run still resumes
    assert len(history["loss"]) == 3


# ---------------------------------------- an experiment resumes phase by phase (items 4, 5)


def test_an_experiment_resumes_phase_by_phase_and_writes_its_report(mnist_small, tmp_path,
                                                                     capsys):
    from keras_latent import experiments, paradigms
    from tests.paradigms.conftest import LATENT_DIM, TINY_CONV

    splits = mnist_small.limit(200, seed=0)
    config = paradigms.TrainingConfig(epochs=2, batch_size=64, verbose=0, precision="float32")
    probe_config = paradigms.PROBE_CONFIG.replace(epochs=2)

    def run(config=config, probe_config=probe_config):
        return experiments.autoencoder_experiment(
            splits, tmp_path, architecture=TINY_CONV, latent_dim=LATENT_DIM, config=config,
            probe_config=probe_config, tsne=30)

    # Killed after the autoencoder's last epoch was backed up, before fit returned.
    with pytest.raises(SimulatedKill):
        run(config=config.replace(callbacks=(KillAfterEpoch(1),)))
    log = tmp_path / "checkpoints" / "training_log.csv"
    logged = log.read_text()
    # The rerun finishes the autoencoder from that state (nothing trained again), its curves
    # included, and writes the report.
    metrics = run()
    assert log.read_text() == logged and len(logged.splitlines()) == 3
    assert metrics["accuracy"]["test"] is not None and "history" in metrics["plots"]
    # Digits are not mirror-symmetric: no flip test-time augmentation figure for MNIST.
    assert "accuracy_flip_tta" not in metrics
    for name in ("metrics.json", "report.md", "history.png", "autoencoder.keras", "probe.keras"):
        assert (tmp_path / name).is_file(), name
    assert not (tmp_path / "checkpoints" / "backup").exists()
    autoencoder = _identity(tmp_path / "autoencoder.keras")
    # Killed in the probe phase (of a run with other probe settings): the rerun loads the
    # finished autoencoder and trains only the probe.
    capsys.readouterr()
    with pytest.raises(SimulatedKill):
        run(probe_config=probe_config.replace(epochs=1, callbacks=(KillAfterEpoch(0),)))
    out = capsys.readouterr().out
    assert "probe.keras was trained with other settings (config.epochs); training it again" in out
    run(probe_config=probe_config.replace(epochs=1))
    out = capsys.readouterr().out
    assert "autoencoder: already trained by an earlier run with the same settings; loaded" in out
    assert _identity(tmp_path / "autoencoder.keras") == autoencoder and log.read_text() == logged
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"]["test"] is not None
