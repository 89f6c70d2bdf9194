"""Cross-entropy on integer labels with label smoothing (Keras' sparse loss has no smoothing)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_latent")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """``CategoricalCrossentropy(label_smoothing=)`` for integer class labels and logits.

    Smoothing (airbench uses 0.2) keeps logits from growing without bound under the high
    learning rates of short schedules; 0 gives the plain sparse cross-entropy.
    """

    def __init__(self, label_smoothing=0.0, name="smoothed_sparse_crossentropy",
                 reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        y_true = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes, dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            y_true, y_pred, from_logits=True, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}
