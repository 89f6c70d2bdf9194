"""Callbacks the paradigms add by default: checkpoints that cannot be half-written, an online
k-NN monitor of representation quality, and the standard resume/log/NaN guards."""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

from keras_latent.evaluation.metrics import encode, knn_accuracy


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that writes a temporary file and renames it into place.

    A run killed while saving leaves the previous best checkpoint intact instead of a truncated
    zip. Only epoch-frequency saving is supported (what the paradigms use).
    """

    def __init__(self, filepath, **kwargs):
        if kwargs.get("save_freq", "epoch") != "epoch":
            raise ValueError("AtomicModelCheckpoint supports save_freq='epoch' only.")
        super().__init__(filepath, **kwargs)
        self._final_filepath = str(filepath)

    def on_epoch_end(self, epoch, logs=None):
        final = self._final_filepath.format(epoch=epoch + 1, **(logs or {}))
        folder, name = os.path.split(final)
        temporary = os.path.join(folder, f".{name}.partial.keras")
        self.filepath = temporary
        try:
            super().on_epoch_end(epoch, logs)
        finally:
            self.filepath = self._final_filepath
        if os.path.exists(temporary):
            os.replace(temporary, final)


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
        logs["val_knn_accuracy"] = knn_accuracy(
            self._codes(self.train_images), self.train_labels,
            self._codes(self.val_images), self.val_labels, k=self.k,
        )


def default_callbacks(output_dir, *, monitor="val_loss", mode="min", monitors=(), extra=()):
    """Callbacks for a run, in the order that matters: ``monitors`` first (they add to the logs
    that checkpoint and CSV read), a NaN guard, then, when ``output_dir`` is given, the best
    checkpoint, resume state and CSV log, and last the caller's ``extra`` callbacks (which see
    complete logs and run after the epoch's state is safely on disk)."""
    callbacks = [*monitors, keras.callbacks.TerminateOnNaN()]
    if output_dir is not None:
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        backup = output_dir / "backup"
        resuming = backup.is_dir() and any(backup.iterdir())
        callbacks += [
            AtomicModelCheckpoint(
                str(output_dir / "best.keras"), monitor=monitor, mode=mode, save_best_only=True
            ),
            keras.callbacks.BackupAndRestore(str(backup)),
            # Append only when resuming, so a fresh run in an old folder starts a clean log.
            keras.callbacks.CSVLogger(str(output_dir / "training_log.csv"), append=resuming),
        ]
    return [*callbacks, *extra]
