"""keras-latent: learn and judge latent representations of images with Keras 3.

Importing the package registers every custom layer and model with Keras, so a saved
``.keras`` file loads with plain ``keras.saving.load_model`` and no ``custom_objects``.
"""

import os

# Model code is backend-neutral, but the data pipelines and SimCLR's train_step use TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

from keras_latent import data  # noqa: E402,F401
from keras_latent import losses  # noqa: E402,F401
from keras_latent import models  # noqa: E402,F401
from keras_latent import schedules  # noqa: E402,F401
from keras_latent import paradigms  # noqa: E402,F401
from keras_latent import evaluation  # noqa: E402,F401
