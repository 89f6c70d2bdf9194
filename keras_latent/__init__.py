"""keras-latent: learn and judge latent representations of images with Keras 3.

``import keras_latent`` is light: it imports neither Keras nor TensorFlow, so a command answers
``--help`` or a bad flag at once and the backend can still be chosen (``KERAS_BACKEND`` or
``--backend``). The subpackages (``keras_latent.models``, ``.paradigms``...) load on first use.

The custom Keras classes register with Keras when ``keras_latent.serializables`` is imported:
by every module that builds or loads models, and by ``import keras_latent`` itself once Keras
is loaded (``import keras`` first, as isort orders it). Then a saved ``.keras`` file loads with
plain ``keras.saving.load_model`` and no ``custom_objects``.
"""

import importlib
import sys

__version__ = "0.1.0"

#: What ``import keras_latent`` gives as attributes, each imported on first use.
SUBPACKAGES = ("backend", "data", "losses", "models", "schedules", "paradigms", "evaluation",
               "serializables")


def __getattr__(name):
    if name in SUBPACKAGES:
        return importlib.import_module(f"keras_latent.{name}")
    raise AttributeError(f"module 'keras_latent' has no attribute {name!r}")


if "keras" in sys.modules:  # Keras is loaded already: registering costs nothing more
    importlib.import_module("keras_latent.serializables")
