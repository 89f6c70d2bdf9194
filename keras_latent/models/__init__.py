"""Encoders, decoders, heads, presets and the composite models built from them.

See docs/ARCHITECTURE.md for the contracts. Importing this package registers every custom model
class with Keras, so saved `.keras` files load with no `custom_objects`.
"""

from keras_latent.models.config import ModelConfigError  # noqa: F401
from keras_latent.models.composite import (  # noqa: F401
    Autoencoder,
    Classifier,
    build_autoencoder,
    build_classifier,
)
from keras_latent.models.decoders import build_decoder  # noqa: F401
from keras_latent.models.encoders import build_encoder  # noqa: F401
from keras_latent.models.heads import (  # noqa: F401
    HeadEnsemble,
    linear_head,
    mlp_head,
    projection_head,
)
from keras_latent.models.presets import PRESETS, get_preset  # noqa: F401
from keras_latent.models.saving import (  # noqa: F401
    ModelFileError,
    load_model,
    remove_leftovers,
    save_model_atomic,
    write_json_atomic,
)

# SimCLR (models/simclr.py) is exported below by its author.
from keras_latent.models.simclr import SimCLR  # noqa: F401
