"""TensorBoard event files written with TensorFlow alone.

Since TensorFlow 2.21 no longer depends on the ``tensorboard`` package, ``tf.summary.scalar``
and ``tf.summary.image`` raise without it (their code lives in that package), and Keras'
``TensorBoard`` callback calls them. The event format is TensorFlow's own: ``tf.summary.write``
with the plugin name TensorBoard's dashboards read. So training needs TensorFlow only, and
viewing needs the ``tensorboard`` package (``pip install -e ".[tensorboard]"``).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from keras_latent.evaluation.metrics import to_unit_float


def _metadata(plugin_name, description=None):
    """What TensorBoard's own summary ops attach (its plugins read the name)."""
    return summary_pb2.SummaryMetadata(
        summary_description=description or "",
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin_name))


class CoreSummary:
    """``tf.summary`` with ``scalar`` and ``image`` written as TensorBoard's own versions
    write them, without importing the ``tensorboard`` package; the rest is ``tf.summary``."""

    def __getattr__(self, name):
        return getattr(tf.summary, name)

    @staticmethod
    def scalar(name, data, step=None, description=None):
        with tf.summary.experimental.summary_scope(name, "scalar_summary") as (tag, _):
            return tf.summary.write(
                tag=tag, tensor=tf.cast(data, tf.float32), step=step,
                metadata=_metadata("scalars", description))

    @staticmethod
    def image(name, data, step=None, max_outputs=3, description=None):
        """``data``: ``(k, height, width, channels)``, floats in [0, 1] or uint8."""
        images = tf.image.convert_image_dtype(data, tf.uint8, saturate=True)[:max_outputs]
        encoded = tf.map_fn(tf.image.encode_png, images, fn_output_signature=tf.string)
        shape = tf.shape(images)
        tensor = tf.concat([tf.stack([tf.as_string(shape[2]), tf.as_string(shape[1])]),
                            encoded], axis=0)  # TensorBoard's layout: width, height, PNGs
        with tf.summary.experimental.summary_scope(name, "image_summary") as (tag, _):
            return tf.summary.write(
                tag=tag, tensor=tensor, step=step,
                metadata=_metadata("images", description))


CORE_SUMMARY = CoreSummary()


class TensorBoard(keras.callbacks.TensorBoard):
    """Keras' ``TensorBoard`` callback writing through ``CORE_SUMMARY``, so it runs without
    the ``tensorboard`` package. Same name, so KerasTuner gives it per-trial folders."""

    @property
    def summary(self):
        return CORE_SUMMARY


class ReconstructionImages(keras.callbacks.Callback):
    """Writes a few fixed images beside their reconstructions to TensorBoard after each epoch.

    A falling MAE does not say *what* is lost (thin strokes, colour, the background); the same
    handful of validation images epoch after epoch does. One image per epoch (originals left,
    reconstructions right, one row each) under ``name`` in ``log_dir``; it costs one forward
    pass over the first ``count`` of ``images`` (uint8 or [0, 1] floats) per epoch.
    """

    def __init__(self, images, log_dir, *, count=8, name="reconstructions"):
        super().__init__()
        self.images = to_unit_float(images[:count])
        self.log_dir, self.name = str(log_dir), name
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        reconstructed = np.asarray(self.model(self.images, training=False), dtype="float32")
        rows = np.concatenate([self.images, np.clip(reconstructed, 0.0, 1.0)], axis=2)
        grid = np.concatenate(list(rows), axis=0)[None]  # (1, n * height, 2 * width, channels)
        with self._writer.as_default():
            CORE_SUMMARY.image(self.name, grid, step=epoch)
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def tensorboard_callbacks(log_root, phase: str, *, reconstruct=None) -> list:
    """TensorBoard logging for one phase of a run, under ``log_root/phase/train|validation``.

    Every epoch scalar of the logs and the optimiser's learning rate (``epoch_learning_rate``,
    Keras' ``TensorBoard`` adds it); with ``reconstruct`` (validation images) the
    reconstructions of the first few as images. No graph: the models are subclassed, and
    tracing the train step for it costs time for a picture few read. ``log_root`` None: none.
    """
    if log_root is None:
        return []
    log_dir = Path(log_root) / phase
    callbacks = [TensorBoard(str(log_dir), write_graph=False)]
    if reconstruct is not None and len(reconstruct):
        callbacks.append(ReconstructionImages(reconstruct, log_dir / "validation"))
    return callbacks
