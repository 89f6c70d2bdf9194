"""One object for the knobs every paradigm shares, so recipes and tuners pass them around whole."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

from keras_latent.paradigms.distributed import resolve_strategy
from keras_latent.paradigms.precision import auto_policy, resolve_precision


@dataclasses.dataclass
class TrainingConfig:
    """How to fit: optimisation, schedule, reproducibility, where to keep checkpoints.

    Args:
        epochs: passes over the training split.
        batch_size: the *global* batch size (split across replicas under a strategy).
        learning_rate: peak learning rate.
        weight_decay: decoupled weight decay (0 gives plain Adam / SGD behaviour); Keras
            scales it by the current learning rate.
        optimizer: ``"adamw"`` or ``"sgd"`` (Nesterov momentum ``momentum``).
        momentum: SGD's momentum.
        schedule: ``"cosine"`` (linear warm-up then cosine decay), ``"triangular"`` (the
            one-cycle ramp of fast CIFAR-10 training, ``schedules.Triangular``) or
            ``"constant"``.
        warmup_epochs: epochs of linear warm-up for the cosine schedule.
        label_smoothing: for the classification losses (classifier and probe).
        lookahead: average the weights every 5 steps with a decay rising to this value at the
            end of the run, reset the weights to the average, and end on it (``Lookahead``,
            the scheme of hlb-CIFAR10 / airbench, which use 0.95 ** 5); None turns it off.
        seed: seeds Python, NumPy, TensorFlow and the data pipelines, so a CPU run repeats.
        output_dir: when set, the run keeps a best-on-validation ``.keras`` checkpoint, a
            ``BackupAndRestore`` folder (an interrupted run resumes from its last epoch) and a
            ``training_log.csv`` there.
        keep_resume_state: keep ``output_dir/backup`` after ``fit`` ends, for a caller that
            deletes it (``callbacks.discard_resume_state``) once it has saved the results: a
            run killed in between then finishes from it instead of training again.
        verbose: Keras' progress-bar setting for ``fit``.
        strategy: a ``tf.distribute`` strategy to build and train under, or its name:
            ``"mirrored"`` (the GPUs of this machine) or ``"multi_worker"`` (several machines,
            ``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``; only the chief keeps files).
            A name is resolved once, when the config is made.
        precision: ``"auto"`` (default: bfloat16 on CPUs with native bf16 instructions and on
            Ampere+ GPUs, float16 on older GPUs, float32 elsewhere), ``"float32"``,
            ``"bfloat16"`` or ``"float16"``; the latter two are Keras' mixed policies (weights,
            losses, batch-norm statistics, logits and decoder outputs stay float32).
        mixed_precision: kept for older code: True means ``precision="float16"``.
        jit_compile: passed to ``compile``; ``"auto"`` is Keras' default.
        callbacks: extra Keras callbacks for the main ``fit`` (after the built-in monitors).
        tensorboard: TensorBoard event files for each phase of the run (``autoencoder``,
            ``probe``, ...) under ``<folder>/<phase>/train|validation``: the epoch scalars, the
            learning rate and, for reconstruction models, a few reconstructed validation
            images. A folder, or True for ``<output_dir>/tensorboard``; False writes none.
    """

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    momentum: float = 0.9
    schedule: str = "cosine"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    lookahead: float | None = None
    seed: int = 0
    output_dir: str | None = None
    keep_resume_state: bool = False
    verbose: Any = "auto"
    strategy: Any = None
    precision: str = "auto"
    mixed_precision: bool = False
    jit_compile: Any = "auto"
    callbacks: tuple = ()
    tensorboard: bool | str | Path = False

    def __post_init__(self):
        if int(self.epochs) < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}.")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}.")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be finite and > 0, got {self.learning_rate}.")
        if self.schedule not in ("cosine", "triangular", "constant"):
            raise ValueError(f"schedule must be 'cosine', 'triangular' or 'constant', got {self.schedule!r}.")
        if self.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {self.optimizer!r}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}.")
        resolve_precision(self.precision)  # fails now, naming the known values, if unknown
        if self.tensorboard is True and self.output_dir is None:
            raise ValueError("tensorboard=True writes under output_dir, which is not set; set "
                             "output_dir or pass the folder itself (tensorboard='runs/x/tb').")

        self.strategy = resolve_strategy(self.strategy)  # a bad TF_CONFIG fails here, in one line

    @property
    def tensorboard_dir(self) -> Path | None:
        """The folder TensorBoard event files go under, or None when none are written."""
        if self.tensorboard is True:
            return Path(self.output_dir) / "tensorboard"
        return Path(self.tensorboard) if self.tensorboard else None

    @property
    def dtype_policy(self) -> str:
        """The Keras dtype policy this run trains under, resolved on this machine."""
        return auto_policy("float16" if self.mixed_precision else self.precision)

    def replace(self, **changes) -> "TrainingConfig":
        """A copy with some fields changed (e.g. a probe's own epochs and learning rate)."""
        return dataclasses.replace(self, **changes)
