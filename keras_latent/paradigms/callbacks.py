"""Callbacks the paradigms add by default: checkpoints that cannot be half-written and that
survive a resume, resume state that a kill cannot corrupt, an online k-NN monitor of
representation quality, and the standard log/NaN guards."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import struct
import warnings
from pathlib import Path

import keras
import numpy as np

from keras_latent import backend
from keras_latent.evaluation.metrics import encode, knn_accuracy
from keras_latent.evaluation.training_log import read_log, read_training_log
from keras_latent.errors import RunError
from keras_latent.io import (
    atomic_path,
    copy_atomic,
    remove_leftovers,
    write_json_atomic,
    write_text_atomic,
)
from keras_latent.models.saving import save_model_atomic
from keras_latent.paradigms.distributed import gather_ints, is_multi_worker

#: What a damaged resume-state file raises while it is read (h5py: OSError; json: ValueError).
_UNREADABLE = (OSError, ValueError, KeyError, TypeError)


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def weights_finite(model) -> bool:
    """Whether every weight of ``model`` is finite, batch-norm moving statistics included: a
    diverged model can score a finite loss with an infinite variance inside."""
    return all(np.isfinite(keras.ops.convert_to_numpy(variable)).all()
               for variable in model.weights)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """Best-only ``ModelCheckpoint`` that a kill, a full disk or a resume cannot spoil.

    - The model is written by ``save_model_atomic`` (a temporary file renamed into place; a
      mixed-precision model as its float32 twin), so a kill leaves the previous best intact.
    - The best value is kept in a JSON file beside the model (``best.keras`` ->
      ``best.json``); ``best_so_far`` reads it back so that a resumed run passes it as
      ``initial_value_threshold`` and a worse first resumed epoch does not overwrite the file.
    - A NaN or infinite value is never an improvement, and a model with a weight that is not
      finite (a diverged run's infinite batch-norm variance) is never saved.

    Only epoch-frequency saving of whole models is supported (what the paradigms use).
    """

    def __init__(self, filepath, **kwargs):
        if kwargs.get("save_freq", "epoch") != "epoch":
            raise ValueError("AtomicModelCheckpoint supports save_freq='epoch' only.")
        if kwargs.pop("save_weights_only", False):
            raise ValueError("AtomicModelCheckpoint saves whole .keras models only.")
        kwargs.setdefault("save_best_only", True)
        super().__init__(filepath, **kwargs)

    @staticmethod
    def state_path(filepath) -> Path:
        return Path(filepath).with_suffix(".json")

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        strategy = backend.distribute_strategy(self.model)
        if is_multi_worker(strategy):
            self.best = _chief_value(strategy, self.best)

    def _is_improvement(self, monitor_value, reference_value):
        return _finite(monitor_value) and super()._is_improvement(monitor_value, reference_value)

    def _save_model(self, epoch, batch, logs):
        filepath = self._get_file_path(epoch, batch, logs)
        if not weights_finite(self.model):  # checked first: it must not become the best value
            return
        if not self._should_save_model(epoch, batch, logs, filepath):
            return
        save_model_atomic(self.model, filepath)
        value = (logs or {}).get(self.monitor)
        if _finite(value):
            write_json_atomic(self.state_path(filepath), {
                "monitor": self.monitor, "mode": self.mode, "best": float(value),
                "epoch": epoch + 1,
            })


def _chief_value(strategy, value):
    """The chief's ``value`` (a float or None) on every worker. Saving is collective, so all
    workers must decide alike whether an epoch is the best; a non-chief's folder is temporary
    and loses the best value a resumed run starts from."""
    bits = struct.unpack("<q", struct.pack("<d", math.nan if value is None else float(value)))
    chief = struct.unpack("<d", struct.pack("<q", gather_ints(strategy, [bits[0]])[0][0]))[0]
    return None if math.isnan(chief) else chief


def best_so_far(checkpoint_path, log_path, monitor, mode="min"):
    """The best ``monitor`` value (``mode``: ``"min"`` or ``"max"``) a run's checkpoint was
    saved at, or ``None``.

    Read from the checkpoint's JSON state file, else (a run killed before writing it, or one
    started by an older version) from the best finite value in the CSV log.
    """
    state = AtomicModelCheckpoint.state_path(checkpoint_path)
    try:
        saved = json.loads(state.read_text())
        same = (saved.get("monitor"), saved.get("mode")) == (monitor, mode)
        if same and _finite(saved.get("best")):
            return float(saved["best"])
    except (OSError, ValueError, AttributeError):
        pass
    _, rows = read_training_log(log_path)
    values = [row[monitor] for row in rows if _finite(row.get(monitor))]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


class AtomicCSVLogger(keras.callbacks.Callback):
    """The per-epoch CSV log (``CSVLogger``'s columns), rewritten whole through
    ``write_text_atomic`` at each epoch's end: a kill mid-write leaves the previous log, never
    a torn line that would cost a column or an epoch.

    With ``append`` (a resumed run) the old log's rows are kept and an epoch trained again
    replaces its row (and any after it); a row that does not parse (a torn last line of a log
    an older version appended to in place) is dropped and the file repaired at once. Without
    it the log starts empty."""

    def __init__(self, filename, append=False):
        super().__init__()
        self.filename, self.append = Path(filename), append
        self.columns, self.rows = ["epoch"], []

    def on_train_begin(self, logs=None):
        self.columns, self.rows = ["epoch"], []
        if not self.append:
            self.filename.unlink(missing_ok=True)
            return
        columns, rows, dropped = read_log(self.filename)
        self.columns = ["epoch", *(name for name in columns if name != "epoch")]
        self.rows = rows
        if dropped:
            warnings.warn(f"{self.filename}: left out {dropped} line(s) that did not parse "
                          "(a torn last line of a killed write); every whole epoch is kept",
                          stacklevel=2)
            self._write()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{name: _loggable(value) for name, value in (logs or {}).items()}}
        self.columns += sorted(name for name in row if name not in self.columns)
        self.rows = [*(old for old in self.rows if old["epoch"] < epoch), row]
        self._write()

    def _write(self):
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow([_cell(row.get(name)) for name in self.columns])
        write_text_atomic(self.filename, out.getvalue())


def _loggable(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _cell(value):
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


def _first_line(error) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


class ResumeStateError(RunError, ValueError):
    """The resume state in a folder belongs to another run; the message says which and what
    to do (a recipe prints it and exits 2). Nothing is deleted."""


def _signature(model, monitor) -> dict:
    """What a resume state must match to be loaded into ``model``: the model's class, its
    weights' shapes in order (names vary between processes) and the monitored value."""
    shapes = json.dumps([list(variable.shape) for variable in model.weights])
    return {"model": type(model).__name__, "monitor": monitor,
            "weights": hashlib.sha1(shapes.encode()).hexdigest()[:16]}


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose resume state a kill or a full disk cannot corrupt.

    Keras writes ``latest.weights.h5`` in place, so a kill during the write leaves a truncated
    file on which every rerun dies. Here every file is written to a temporary name and renamed
    into place, Keras' ``double_checkpoint`` keeps the previous epoch's state beside it (used
    when the latest cannot be read), and a state that cannot be read at all is reported with a
    warning and training starts over, instead of failing on every rerun. An epoch that ended
    with a non-finite loss (a diverged run) is not backed up. Under a multi-worker strategy each
    worker keeps its own state and all resume from the same epoch.

    The state names the run it belongs to (``owner.json``: model class, weight shapes and
    ``monitor``); a state of another run (another method trained into the same folder) is
    refused with ``ResumeStateError`` and left alone, instead of failing to load or being
    deleted. After ``on_train_begin``, ``resumed_epoch`` is the number of epochs the restored
    state had finished (0 for a fresh run).
    """

    OWNER_FILE = "owner.json"

    def __init__(self, backup_dir, *, monitor=None, **kwargs):
        kwargs.setdefault("double_checkpoint", True)
        super().__init__(backup_dir, **kwargs)
        self.monitor, self.resumed_epoch, self._owner = monitor, 0, None
        self._owner_path = os.path.join(backup_dir, self.OWNER_FILE)

    def on_train_begin(self, logs=None):
        self.resumed_epoch = 0
        # Taken now, before any step, in the run that writes the state and in the one that
        # reads it alike (parts a custom train_step builds lazily are missing in both).
        self._owner = _signature(self.model, self.monitor)
        if is_multi_worker(backend.distribute_strategy(self.model)):
            self._resume_with_other_workers()
        else:
            has_state = any(os.path.exists(path) for path in (
                self._weights_path, self._training_metadata_path, self._prev_weights_path))
            if not has_state:
                return
            self._check_owner()
            self._restore(self._snapshot())
        self.resumed_epoch = int(getattr(self.model, "_initial_epoch", None) or 0)

    def _check_owner(self):
        try:
            with open(self._owner_path) as handle:
                owner = json.load(handle)
        except (OSError, ValueError):
            return  # a state of an older version: loading it tells
        if not isinstance(owner, dict):
            return
        mine = self._owner
        if all(owner.get(key) == value for key, value in mine.items()):
            return
        try:
            with open(self._training_metadata_path) as handle:
                epoch = f", saved after epoch {int(json.load(handle)['epoch'])}"
        except (OSError, ValueError, KeyError, TypeError):
            epoch = ""
        other = f"a {owner.get('model')} model"
        if owner.get("model") == mine["model"]:
            other += " of other layer sizes"
        raise ResumeStateError(
            f"{self.backup_dir} holds the resume state of another run ({other}, monitored by "
            f"{owner.get('monitor')}{epoch}), not of this {mine['model']} run: use another "
            f"output folder (--output), or delete {self.backup_dir} to start this run over "
            "(that run's state is then lost)")

    def _snapshot(self):
        """The variables' values before any load, to undo a load that fails half-way."""
        optimizer = self.model.optimizer
        if self.model.built and optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        fresh = [(v, np.array(v)) for v in self.model.variables]
        if optimizer is not None:
            fresh += [(v, np.array(v)) for v in optimizer.variables]
        return fresh

    def _restore(self, fresh):
        try:
            self._load_model()
            return
        except _UNREADABLE as error:
            problem = error
        if os.path.exists(self._prev_weights_path):
            try:
                self._load_previous()
                warnings.warn(f"the latest resume state in {self.backup_dir} could not be read "
                              f"({_first_line(problem)}); resumed from the one "
                              "before it (one epoch earlier)", stacklevel=3)
                return
            except _UNREADABLE as error:
                problem = error
        for variable, value in fresh:  # undo whatever a failed load half-did
            variable.assign(value)
        self.model._initial_epoch = None
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        warnings.warn(f"the resume state in {self.backup_dir} could not be read "
                      f"({_first_line(problem)}); deleted it, training starts over",
                      stacklevel=3)

    def _load_previous(self):
        """Make the previous epoch's state (``double_checkpoint``) the latest and load it."""
        copy_atomic(self._prev_weights_path, self._weights_path)
        if os.path.exists(self._prev_training_metadata_path):
            copy_atomic(self._prev_training_metadata_path, self._training_metadata_path)
        elif os.path.exists(self._training_metadata_path):
            os.remove(self._training_metadata_path)
        self._load_model()

    def _resume_with_other_workers(self):
        """Resume every worker from the same epoch, or they would wait on each other forever.

        Each worker keeps its own state (only the chief's folder outlives the run). One killed
        between two workers' saves is an epoch behind the others: all resume from the latest
        epoch that every worker holds (its latest or, from ``double_checkpoint``, its previous
        state), else start over. Loading runs collective ops, so all workers load or none."""
        latest = self._saved_epoch(self._training_metadata_path, self._weights_path)
        previous = self._saved_epoch(self._prev_training_metadata_path, self._prev_weights_path)
        held = [set(epochs) for epochs in gather_ints(backend.distribute_strategy(self.model),
                                                     [latest, previous])]
        epoch = max(set.intersection(*held) - {0}, default=0)
        if epoch != latest:
            warnings.warn(f"the workers' resume states were at epochs "
                          f"{sorted(max(epochs) for epochs in held)}; this worker resumes with "
                          f"them after epoch {epoch}", stacklevel=3)
        if epoch == 0:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        elif epoch == latest:
            self._load_model()
        else:
            self._load_previous()

    @staticmethod
    def _saved_epoch(metadata_path, weights_path) -> int:
        """The epoch a saved state ends (0 for none or an unreadable one)."""
        try:
            with open(metadata_path) as handle:
                epoch = json.load(handle)["epoch"]
        except _UNREADABLE:
            return 0
        return int(epoch) if os.path.exists(weights_path) and epoch >= 1 else 0

    def on_epoch_end(self, epoch, logs=None):
        if not (_finite((logs or {}).get("loss", 0.0)) and weights_finite(self.model)):
            return  # a diverged state is nothing to resume from
        super().on_epoch_end(epoch, logs)

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        owner = self._owner or _signature(self.model, self.monitor)
        write_json_atomic(self._owner_path, owner)
        if self.double_checkpoint:
            for current, previous in ((self._weights_path, self._prev_weights_path),
                                      (self._training_metadata_path,
                                       self._prev_training_metadata_path)):
                if os.path.exists(current):
                    copy_atomic(current, previous)
        # Weights first: a kill between the two renames repeats an epoch, never skips one.
        with atomic_path(self._weights_path, suffix=".tmp.weights.h5") as temporary:
            self.model.save_weights(temporary, overwrite=True)
        write_json_atomic(self._training_metadata_path,
                          {"epoch": self._current_epoch, "batch": self._last_batch_seen})


class KNNMonitor(keras.callbacks.Callback):
    """Logs ``val_knn_accuracy``: k-NN (cosine) accuracy of the latent codes at each epoch end.

    A contrastive loss cannot rank runs (its scale moves with the temperature); this number can,
    so checkpoints, CSV logs and KerasTuner use it as the objective. Place it before callbacks
    that read the logs. ``encode`` maps an image batch array to latent codes; by default the
    model's ``encoder`` attribute (or the model itself) is used.
    """

    def __init__(self, train_images, train_labels, val_images, val_labels, *, k=20,
                 batch_size=256, every=1, encode=None):
        super().__init__()
        self.train_images, self.train_labels = train_images, np.asarray(train_labels)
        self.val_images, self.val_labels = val_images, np.asarray(val_labels)
        self.k, self.batch_size, self.every = k, batch_size, max(1, int(every))
        self.encode = encode

    def _codes(self, images):
        if self.encode is not None:
            return self.encode(images)
        return encode(self.model, images, batch_size=self.batch_size)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or (epoch + 1) % self.every:
            return
        train_codes, val_codes = self._codes(self.train_images), self._codes(self.val_images)
        if not (np.isfinite(train_codes).all() and np.isfinite(val_codes).all()):
            logs["val_knn_accuracy"] = float("nan")  # diverged: k-NN cannot rank NaN codes
            return
        logs["val_knn_accuracy"] = knn_accuracy(train_codes, self.train_labels,
                                                val_codes, self.val_labels, k=self.k)

    @classmethod
    def from_splits(cls, splits, knn_examples=5000, seed=0, **kwargs):
        """Codes of the validation split looked up among ``knn_examples`` training images drawn
        with ``seed``: the monitor SimCLR's training and the tuner's k-NN objectives use."""
        reference = splits.train.take(min(knn_examples, len(splits.train)), seed=seed)
        return cls(reference.images, reference.labels, splits.val.images, splits.val.labels,
                   **kwargs)


def default_callbacks(output_dir, *, monitor="val_loss", mode="min", monitors=(), extra=(),
                      keep_resume_state=False):
    """Callbacks for a run, in the order that matters: ``monitors`` first (they add to the logs
    that checkpoint and CSV read), a NaN guard, then, when ``output_dir`` is given, the best
    checkpoint, CSV log and resume state (the log first, so it holds every epoch the state
    has: a kill between the two repeats the epoch, and ``logged_history`` keeps its last row),
    and last the caller's ``extra`` callbacks (which see complete logs and run after the
    epoch's state is safely on disk).

    A resumed run (``output_dir/backup`` holds state) keeps the best value its checkpoint was
    saved at; temporary files a killed save left in ``output_dir`` are deleted. With
    ``keep_resume_state`` the resume state outlives a finished ``fit`` (the caller deletes it,
    ``discard_resume_state``, once the results are safely written): a rerun killed between
    the two then restores the finished model instead of training again."""
    callbacks = [*monitors, keras.callbacks.TerminateOnNaN()]
    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        backup = output_dir / "backup"
        remove_leftovers(output_dir)
        remove_leftovers(backup)
        resuming = any((backup / name).exists() for name in (
            "latest.weights.h5", "latest.weights.h5.bkp", "training_metadata.json"))
        best_path, log_path = output_dir / "best.keras", output_dir / "training_log.csv"
        best = best_so_far(best_path, log_path, monitor, mode) if resuming else None
        callbacks += [
            AtomicModelCheckpoint(str(best_path), monitor=monitor, mode=mode,
                                  initial_value_threshold=best),
            # Append only when resuming, so a fresh run in an old folder starts a clean log.
            AtomicCSVLogger(log_path, append=resuming),
            AtomicBackupAndRestore(str(backup), monitor=monitor,
                                   delete_checkpoint=not keep_resume_state),
        ]
    return [*callbacks, *extra]


def discard_resume_state(output_dir) -> None:
    """Delete the resume state ``default_callbacks(output_dir, keep_resume_state=True)`` kept."""
    shutil.rmtree(Path(output_dir) / "backup", ignore_errors=True)
