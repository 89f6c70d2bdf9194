"""Every class keras-latent registers with Keras, imported in one place.

Importing this module is what lets plain ``keras.saving.load_model`` read keras-latent's
``.keras`` files without ``custom_objects`` (``keras_latent.models.load_model``, the recipes,
the tuner and ``keras-latent`` import it). Backend-neutral: it imports no TensorFlow.
"""

from keras_latent.data.augment import Augmenter  # noqa: F401
from keras_latent.losses import NTXent, SmoothedSparseCrossentropy  # noqa: F401
from keras_latent.models.composite import Autoencoder, Classifier  # noqa: F401
from keras_latent.models.heads import HeadEnsemble  # noqa: F401
from keras_latent.models.layers import PartialDirac, PatchWhitening, ScaledBias  # noqa: F401
from keras_latent.models.simclr import SimCLR  # noqa: F401
from keras_latent.schedules import Triangular  # noqa: F401
