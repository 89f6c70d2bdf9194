"""keras-latent: learn and judge latent representations of images with Keras 3.

Importing the package registers every custom layer and model with Keras, so a saved
``.keras`` file loads with plain ``keras.saving.load_model`` and no ``custom_objects``.
"""

import os
import sys

# Model code is backend-neutral, but the data pipelines and SimCLR's train_step use TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly():
    """Import TensorFlow and list its devices with file descriptor 2 sent to /dev/null.

    Its C++ start-up lines (oneDNN notice, CUDA probing, "All log messages before
    absl::InitializeLog()") are written before any log level applies, so TF_CPP_MIN_LOG_LEVEL
    cannot hide them. ``KERAS_LATENT_VERBOSE=1`` shows them. A failing import is not hidden: the
    ``import keras`` below raises it again, with its message.
    """
    if os.environ.get("KERAS_LATENT_VERBOSE") or "tensorflow" in sys.modules:
        return
    try:
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    except Exception:  # noqa: BLE001 - re-raised visibly by the next import
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


if os.environ.get("KERAS_BACKEND") == "tensorflow":
    _import_tensorflow_quietly()

__version__ = "0.1.0"

from keras_latent import data  # noqa: E402,F401
from keras_latent import losses  # noqa: E402,F401
from keras_latent import models  # noqa: E402,F401
from keras_latent import schedules  # noqa: E402,F401
from keras_latent import paradigms  # noqa: E402,F401
from keras_latent import evaluation  # noqa: E402,F401
