"""The run layer: a method's experiment, phase by phase (``phases``), from data to report
(``runners``). What the recipes and ``recipes/compare.py`` call."""

from keras_latent.experiments.phases import (
    PHASES_FILE,
    Phases,
    TrainingDiverged,
    check_finite,
    trained_phase,
    training_settings,
)
from keras_latent.experiments.runners import (
    autoencoder_experiment,
    classifier_experiment,
    random_baseline_experiment,
    simclr_experiment,
    tensorboard_subfolder,
)

__all__ = [
    "PHASES_FILE",
    "Phases",
    "TrainingDiverged",
    "autoencoder_experiment",
    "check_finite",
    "classifier_experiment",
    "random_baseline_experiment",
    "simclr_experiment",
    "tensorboard_subfolder",
    "trained_phase",
    "training_settings",
]
