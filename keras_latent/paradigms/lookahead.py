"""Lookahead with a rising decay: the weight averaging of hlb-CIFAR10 and airbench.

Keras' optimiser EMA (``use_ema``) keeps a constant momentum from the first step, which holds
a short run back while it is still learning fast. Here every ``every`` steps the slow weights
move towards the fast ones with a decay that grows as ``base * (step / total) ** power``
(nearly no averaging early, strong averaging late), the fast weights are reset to them, and
the run ends on the slow weights.
"""

import keras
import numpy as np

from keras_latent import backend


class Lookahead(keras.callbacks.Callback):
    """Averages every float variable of the model (weights and batch-norm statistics).

    Args:
        total_steps: optimiser steps of the whole run (the schedule's length).
        base: decay per update at the end of the run (airbench: 0.95 ** 5 every 5 steps).
        every: steps between updates.
        power: how late the averaging starts.
        start_fraction: no averaging before this fraction of the run (airbench: 3 of 9.9
            epochs); from then on each epoch also ends on the slow weights, so validation and
            checkpoints see them.
    """

    def __init__(self, total_steps, base=0.95 ** 5, every=5, power=3.0, start_fraction=0.3):
        super().__init__()
        self.total_steps = max(1, int(total_steps))
        self.base, self.every, self.power = float(base), max(1, int(every)), float(power)
        self.start_step = int(float(start_fraction) * self.total_steps)
        self._slow = None
        self._step = 0

    def _variables(self):
        return [v for v in self.model.weights if "float" in str(v.dtype)]

    def on_train_begin(self, logs=None):
        self._slow = None

    def on_train_batch_begin(self, batch, logs=None):
        if self._step == 0 and self._slow is None:
            # After BackupAndRestore has put a resumed run's weights and step count back.
            self._step = int(np.asarray(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        self._step += 1
        if self._step < self.start_step:
            return
        epoch_ends = batch + 1 == self.params.get("steps") or self._step >= self.total_steps
        if self._slow is not None and self._step % self.every and not epoch_ends:
            return
        backend.sync_variables(self.model)
        if self._slow is None:
            self._slow = [np.array(v) for v in self._variables()]
        elif self._step % self.every == 0:
            self._update(self.base * (self._step / self.total_steps) ** self.power)
        if epoch_ends:
            # End every epoch (and the run) on the slow weights, before Keras validates.
            self._update(1.0)

    def _update(self, decay):
        for slow, variable in zip(self._slow, self._variables()):
            slow *= decay
            slow += (1.0 - decay) * np.asarray(variable)
            variable.assign(slow)
