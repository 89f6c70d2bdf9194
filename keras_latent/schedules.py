"""Learning-rate schedules Keras does not ship (saved with the optimiser, so registered)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_latent")
class Triangular(keras.optimizers.schedules.LearningRateSchedule):
    """Linear ramp from ``start * peak_lr`` to ``peak_lr`` over the first ``peak_fraction`` of
    ``total_steps``, then linear decay to ``end * peak_lr``: the one-cycle shape fast CIFAR-10
    schedules use (airbench: start 0.2, peak at 23 %, end 0.07).
    """

    def __init__(self, peak_lr, total_steps, peak_fraction=0.23, start=0.2, end=0.07, name="triangular"):
        self.peak_lr = float(peak_lr)
        self.total_steps = max(1, int(total_steps))
        self.peak_fraction = float(peak_fraction)
        self.start, self.end, self.name = float(start), float(end), name

    def __call__(self, step):
        step = ops.cast(step, "float32")
        peak = max(1.0, self.peak_fraction * self.total_steps)
        rising = self.start + (1.0 - self.start) * step / peak
        falling = 1.0 + (self.end - 1.0) * (step - peak) / max(1.0, self.total_steps - peak)
        factor = ops.where(step < peak, rising, ops.maximum(falling, self.end))
        return self.peak_lr * factor

    def get_config(self):
        return {"peak_lr": self.peak_lr, "total_steps": self.total_steps,
                "peak_fraction": self.peak_fraction, "start": self.start, "end": self.end,
                "name": self.name}
