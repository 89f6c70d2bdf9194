"""Training paradigms: each experiment is one call returning a TrainingRun.

Each paradigm also exposes its pieces -- ``<paradigm>_datasets``, ``build_<paradigm>`` and
``compile_<paradigm>(model, config, steps)``, all taking their options from a
``TrainingConfig`` -- which ``train_*``, the tuner's HyperModels and the benchmarks share.

Imported lazily (PEP 562) so that ``import keras_latent`` stays importable while the layers
below are loaded, and so the data/models layers never import the paradigms.
"""

import importlib

_EXPORTS = {
    "TrainingConfig": "config",
    "TrainingRun": "fitting",
    "train_autoencoder": "autoencoder",
    "train_decoder": "autoencoder",
    "autoencoder_datasets": "autoencoder",
    "build_autoencoder": "autoencoder",
    "compile_autoencoder": "autoencoder",
    "train_probe": "probe",
    "train_random_baseline": "probe",
    "build_random_encoder": "probe",
    "labelled_subset": "probe",
    "PROBE_CONFIG": "probe",
    "probe_config": "probe",
    "train_classifier": "classifier",
    "FAST_CLASSIFIER_CONFIG": "classifier",
    "classifier_datasets": "classifier",
    "build_classification_model": "classifier",
    "compile_classifier": "probe",
    "train_simclr": "contrastive",
    "SIMCLR_CONFIG": "contrastive",
    "simclr_datasets": "contrastive",
    "build_simclr": "contrastive",
    "compile_simclr": "contrastive",
    "simclr_batch_config": "contrastive",
    "AtomicModelCheckpoint": "callbacks",
    "KNNMonitor": "callbacks",
    "default_callbacks": "callbacks",
    "ReconstructionImages": "tensorboard",
    "TensorBoard": "tensorboard",
    "tensorboard_callbacks": "tensorboard",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"keras_latent.paradigms.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'keras_latent.paradigms' has no attribute {name!r}")
