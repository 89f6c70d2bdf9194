"""One object for the knobs every paradigm shares, so recipes and tuners pass them around whole."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class TrainingConfig:
    """How to fit: optimisation, schedule, reproducibility, where to keep checkpoints.

    Args:
        epochs: passes over the training split.
        batch_size: the *global* batch size (split across replicas under a strategy).
        learning_rate: peak learning rate of AdamW.
        weight_decay: decoupled weight decay of AdamW (0 gives plain Adam behaviour).
        schedule: ``"cosine"`` (linear warm-up then cosine decay) or ``"constant"``.
        warmup_epochs: epochs of linear warm-up for the cosine schedule.
        seed: seeds Python, NumPy, TensorFlow and the data pipelines, so a CPU run repeats.
        output_dir: when set, the run keeps a best-on-validation ``.keras`` checkpoint, a
            ``BackupAndRestore`` folder (an interrupted run resumes from its last epoch) and a
            ``training_log.csv`` there.
        verbose: Keras' progress-bar setting for ``fit``.
        strategy: a ``tf.distribute`` strategy to build and train under (e.g. MirroredStrategy).
        mixed_precision: train with the ``mixed_float16`` policy (losses stay float32).
        jit_compile: passed to ``compile``; ``"auto"`` is Keras' default.
        callbacks: extra Keras callbacks for the main ``fit`` (after the built-in monitors).
    """

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    warmup_epochs: int = 0
    seed: int = 0
    output_dir: str | None = None
    verbose: Any = "auto"
    strategy: Any = None
    mixed_precision: bool = False
    jit_compile: Any = "auto"
    callbacks: tuple = ()

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}.")

    def replace(self, **changes) -> "TrainingConfig":
        """A copy with some fields changed (e.g. a probe's own epochs and learning rate)."""
        return dataclasses.replace(self, **changes)
