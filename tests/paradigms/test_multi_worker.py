"""Training on several machines (issue 16, item 2): TF_CONFIG is checked up front, only the
chief keeps files, and two worker processes on 127.0.0.1 (MultiWorkerMirroredStrategy, CPU)
train what one process trains on the same global batch, resuming together after a kill.

The two-process test is marked ``multi_worker`` (``pytest -m multi_worker``). The test waits on
the workers' own progress (their logs and run folders, ``tests/processes.py``): a hang, a worker
waiting on a collective the other never joins, is stopped after a long stall, with the workers'
Python stacks in their logs.
"""

import json
import os
import shutil
import socket
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from keras_latent.paradigms.distributed import (
    discard_worker_copy,
    parse_tf_config,
    resolve_strategy,
    write_path,
)
from tests import processes

#: Shared by both runs. SGD, not Adam: its update is linear in the gradient, so float32
#: rounding differences stay of their own size instead of being divided by a tiny sqrt(v).
CONFIG = dict(batch_size=32, learning_rate=0.05, optimizer="sgd", schedule="constant",
              weight_decay=0.0, precision="float32", verbose=0, seed=0)
AE_EPOCHS, SIMCLR_EPOCHS = 3, 2
#: No batch norm in the autoencoder: it normalises per replica there (Keras' default), which a
#: single process cannot reproduce. SimCLR's batch norm is global (``synchronize_batch_norm``).
AE_ARCH = {"kind": "conv", "channels": [4, 8], "kernel_sizes": 3, "strides": 2,
           "batch_norm": False}
SIMCLR_ARCH = {**AE_ARCH, "batch_norm": True}

#: Observed: 2e-8 for the autoencoder and 3e-5 for SimCLR. Two workers sum two half-batch
#: gradients where one process reduces the whole batch, which only reorders float32 additions
#: (1e-7 relative per step); SimCLR's synchronized batch norm also computes the variance as
#: E[x^2] - E[x]^2 from all-reduced sums, where one device takes the mean of squared
#: deviations, and four SGD steps through batch norm grow that to 3e-5. Real mistakes move the
#: weights by 700 times the tolerance or more (measured on this test's SimCLR run): batch norm
#: per worker instead of global by 1.0, NT-Xent contrasting each worker's half batch only by 0.07.
TOLERANCE = 1e-4

_WORKER = textwrap.dedent(
    """
    import sys
    from keras_latent.paradigms import TrainingConfig
    from tests.paradigms import test_multi_worker as case

    # First: MultiWorkerMirroredStrategy must start before TensorFlow runs anything.
    config = TrainingConfig(strategy="multi_worker", **case.CONFIG)
    case.train_all(config, sys.argv[1], worker=config.strategy.cluster_resolver.task_id)
    """
)


def mnist_slice():
    from keras_latent.data import load_dataset

    return load_dataset("mnist").limit(64, seed=0)


def train_all(config, out, worker=None):
    """The autoencoder stopped as if killed after an epoch and resumed, then SimCLR; saves what
    both runs compare in ``out/result_<worker>.npz``.

    With ``worker`` set (a multi-worker run) the autoencoder trains one epoch more before the
    kill and worker 1 then loses its last epoch's state, as if killed before saving it: the
    chief must go back one epoch with it. A single process is killed after that same epoch.
    """
    from keras_latent import paradigms

    splits, out = mnist_slice(), str(out)
    ae_config = config.replace(epochs=AE_EPOCHS, output_dir=os.path.join(out, "ae"))
    backup = write_path(ae_config.output_dir, config.strategy) / "backup"
    kill = _StopAsIfKilled(0 if worker is None else 1, backup,
                           os.path.join(out, f"killed_{worker}"))
    paradigms.train_autoencoder(splits, architecture=AE_ARCH, latent_dim=8,
                                config=ae_config.replace(callbacks=(kill,)))
    kill.leave_state_behind(lose_last_epoch=worker == 1)
    autoencoder = paradigms.train_autoencoder(splits, architecture=AE_ARCH, latent_dim=8,
                                              config=ae_config)
    simclr = paradigms.train_simclr(
        splits, architecture=SIMCLR_ARCH, latent_dim=8, projection_hidden=16, projection_dim=8,
        config=config.replace(epochs=SIMCLR_EPOCHS, output_dir=os.path.join(out, "simclr")))
    np.savez(os.path.join(out, f"result_{worker}.npz"),
             ae_loss=autoencoder.history["loss"], simclr_loss=simclr.history["loss"],
             **{f"ae_{i}": w for i, w in enumerate(autoencoder.model.get_weights())},
             **{f"simclr_{i}": w for i, w in enumerate(simclr.model.get_weights())})


class _StopAsIfKilled(keras.callbacks.Callback):
    """Ends ``fit`` after epoch ``epoch`` (0-based) with that epoch's resume state in ``backup``,
    as a kill then would. A raised exception (``KillAfterEpoch``) would do the same in one
    process, but leaves the multi-worker runtime of a process that goes on waiting forever."""

    def __init__(self, epoch, backup, saved):
        super().__init__()
        self.epoch, self.backup, self.saved = epoch, Path(backup), Path(saved)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            shutil.copytree(self.backup, self.saved)  # BackupAndRestore deletes it at the end
            self.model.stop_training = True

    def leave_state_behind(self, lose_last_epoch):
        """Put the state back; with ``lose_last_epoch`` the one before it, as if killed while
        saving the last one."""
        shutil.copytree(self.saved, self.backup)
        shutil.rmtree(self.saved)
        if lose_last_epoch:
            for name in ("latest.weights.h5", "training_metadata.json"):
                shutil.copyfile(self.backup / (name + ".bkp"), self.backup / name)


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_workers(out):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    workers = []
    for index in range(2):
        task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        env = processes.child_env(CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL=3,
                                  TF_CONFIG=json.dumps(task))
        workers.append(processes.start([sys.executable, "-c", _WORKER, out],
                                       out / f"worker{index}.log", env=env))
    return workers


def _wait(workers, out):
    try:
        processes.wait_while_progressing(workers, [out])
    finally:
        processes.stop(workers)
    for index, process in enumerate(workers):
        assert process.returncode == 0, processes.output_of(process)


def _assert_close(multi, single, what):
    gap = np.max(np.abs(np.asarray(multi) - np.asarray(single)))
    assert gap < TOLERANCE, f"{what}: multi-worker and single-process differ by {gap:.3g}"


@pytest.mark.multi_worker
def test_two_workers_train_what_one_process_trains(tmp_path, data_dir):
    """The reference is one process on one device under OneDeviceStrategy: under any strategy
    Keras 3 draws one batch before the first epoch to build the model, which moves the seeded
    shuffle and augmentation one iteration on, so the reference must draw it too."""
    import tensorflow as tf

    from keras_latent.paradigms import TrainingConfig

    multi_out, single_out = tmp_path / "multi", tmp_path / "single"
    multi_out.mkdir()
    workers = _start_workers(multi_out)
    try:  # the reference trains while the workers start
        one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
        train_all(TrainingConfig(strategy=one_device, **CONFIG), single_out)
    finally:
        _wait(workers, multi_out)

    single = np.load(single_out / "result_None.npz")
    chief, other = np.load(multi_out / "result_0.npz"), np.load(multi_out / "result_1.npz")
    for name in single.files:
        _assert_close(chief[name], single[name], name)
        if name.endswith("_loss"):
            # Only the chief keeps the whole run's log (training_log.csv) across the resume; a
            # worker's folder is temporary, so it reports the epochs of its last fit alone.
            np.testing.assert_array_equal(chief[name][-len(other[name]):], other[name])
        else:
            np.testing.assert_array_equal(chief[name], other[name])  # synchronous: one model
    assert len(chief["ae_loss"]) == AE_EPOCHS  # the whole run, read back from its log
    assert len(other["ae_loss"]) == AE_EPOCHS - 1  # both workers resumed after epoch 1
    assert "resume states were at epochs [1, 2]" in (multi_out / "worker0.log").read_text()

    # Only the chief's files are left; worker 1 wrote to workertemp_1, deleted after each fit.
    assert not (multi_out / "workertemp_1").exists()
    for run in ("ae", "simclr"):
        assert (multi_out / run / "best.keras").is_file()
        assert (multi_out / run / "training_log.csv").is_file()


# ------------------------------------------------------------------------ TF_CONFIG, paths

TWO_HOSTS = {"cluster": {"worker": ["10.0.0.1:12345", "10.0.0.2:12345"]},
             "task": {"type": "worker", "index": 1}}


def test_a_valid_tf_config_is_returned_as_parsed():
    assert parse_tf_config(json.dumps(TWO_HOSTS)) == TWO_HOSTS
    with_chief = {"cluster": {"chief": ["a:1"], "worker": ["b:2"]},
                  "task": {"type": "chief", "index": 0}}
    assert parse_tf_config(json.dumps(with_chief)) == with_chief


@pytest.mark.parametrize("text, words", [
    (None, "needs the TF_CONFIG environment variable"),
    ("  ", "needs the TF_CONFIG environment variable"),
    ('{"cluster": ', "not valid JSON"),
    ("[1, 2]", 'needs a "cluster" object'),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', 'needs a "cluster"'),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "job 'ps' is not used"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "non-empty list"),
    ('{"cluster": {"worker": ["host"]}, "task": {"type": "worker", "index": 0}}',
     "not a \"host:port\" address"),
    ('{"cluster": {"chief": ["a:1", "b:2"]}, "task": {"type": "chief", "index": 0}}',
     "exactly one address"),
    ('{"cluster": {"worker": ["a:1"]}}', 'needs a "task" object'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     "not a job of its cluster"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "not in [0, 2)"),
])
def test_a_bad_tf_config_fails_in_one_line(text, words):
    with pytest.raises(ValueError) as error:
        parse_tf_config(text)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_strategy_names_are_checked():
    assert resolve_strategy(None) is None
    with pytest.raises(ValueError, match="strategy must be one of 'mirrored', 'multi_worker'"):
        resolve_strategy("parameter_server")


def _strategy(chief, task_id=1):
    return SimpleNamespace(extended=SimpleNamespace(should_checkpoint=chief),
                           cluster_resolver=SimpleNamespace(task_id=task_id))


def test_only_the_chief_writes_where_it_is_asked(tmp_path):
    run = tmp_path / "runs" / "mnist_simclr"
    assert write_path(run, None) == run and write_path(run, _strategy(True)) == run
    copy = write_path(run, _strategy(False))
    assert copy == tmp_path / "runs" / "workertemp_1" / "mnist_simclr"
    inside = copy / "checkpoints"
    assert write_path(inside, _strategy(False)) == inside  # already this worker's own folder

    (inside / "backup").mkdir(parents=True)
    assert not discard_worker_copy(run, run)
    assert discard_worker_copy(run, copy)
    assert not (tmp_path / "runs" / "workertemp_1").exists()


def test_simclr_batch_norm_is_global_only_under_several_replicas():
    from keras_latent.models import SimCLR, build_encoder, projection_head
    from keras_latent.paradigms.contrastive import synchronize_batch_norm

    model = SimCLR(build_encoder((16, 16, 1), 8, **SIMCLR_ARCH), projection_head(8, 16, 8))
    assert synchronize_batch_norm(model, None) == 0
    assert synchronize_batch_norm(model, SimpleNamespace(num_replicas_in_sync=1)) == 0
    norms = [layer for layer in model._flatten_layers()
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and not any(layer.synchronized for layer in norms)
    assert synchronize_batch_norm(model, SimpleNamespace(num_replicas_in_sync=2)) == len(norms)
    assert all(layer.synchronized for layer in norms)
