"""KerasTuner search spaces over the keras-latent paradigms and the ``tuning/search.py`` command.

Exports are loaded lazily (PEP 562) so ``python tuning/search.py --help`` and argument errors
answer before TensorFlow is imported.
"""

import importlib

_EXPORTS = {
    "EncoderSpace": "hypermodels",
    "SearchSpaceError": "hypermodels",
    "declare_encoder": "hypermodels",
    "declare_learning_rate": "hypermodels",
    "AutoencoderHyperModel": "hypermodels",
    "ClassifierHyperModel": "hypermodels",
    "SimCLRHyperModel": "hypermodels",
    "HYPERMODELS": "hypermodels",
    "main": "search",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"tuning.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'tuning' has no attribute {name!r}")
