"""Models made of Functional parts: `Autoencoder` and `Classifier`.

They are thin `keras.Model` subclasses so the parts stay reachable by name (`model.encoder` is
what evaluation and transfer reuse) and so a frozen encoder can run in inference mode.

Why not keras-hub's way (`super().__init__(inputs=..., outputs=...)` over the parts' graph):
Keras saves a Functional model's weights under `layers/<class name>` (here `layers/functional`
and `layers/functional_1`) where these models save them under `encoder/` and `decoder/`, so
every `.keras` file saved so far would stop loading. The subclass costs one `build`.
"""

import keras

from keras_latent.models.decoders import build_decoder
from keras_latent.models.encoders import build_encoder
from keras_latent.models.heads import linear_head, mlp_head
from keras_latent.models.config import ModelConfigError, check_positive_int


@keras.saving.register_keras_serializable(package="keras_latent")
class Autoencoder(keras.Model):
    """An encoder followed by a decoder; trains on `(x, x)` with a reconstruction loss.

    Args:
        encoder: model from images to `(batch, latent_dim)`.
        decoder: model from `(batch, latent_dim)` back to images.

    Example:
        >>> ae = Autoencoder(build_encoder((28, 28, 1), 16), build_decoder((28, 28, 1), 16))
        >>> ae.compile("adam", "mse"); ae.fit(x, x)
    """

    def __init__(self, encoder, decoder, **kwargs):
        kwargs.setdefault("name", "autoencoder")
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        _build_now(self, encoder)

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        if not self.decoder.built:
            self.decoder.build(self.encoder.compute_output_shape(input_shape))
        self.built = True

    def call(self, x, training=None):
        return self.decoder(self.encoder(x, training=training), training=training)

    def encode(self, x, training=False):
        return self.encoder(x, training=training)

    def decode(self, z, training=False):
        return self.decoder(z, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        decoder = keras.saving.deserialize_keras_object(config.pop("decoder"))
        return cls(encoder, decoder, **config)


@keras.saving.register_keras_serializable(package="keras_latent")
class Classifier(keras.Model):
    """An encoder followed by a head that outputs logits.

    Args:
        encoder: model from images to `(batch, latent_dim)`.
        head: model from `(batch, latent_dim)` to logits.
        freeze_encoder: when True the encoder's weights are not trained AND it runs with
            `training=False`, so batch-norm moving statistics stay exactly as pretrained (a
            linear probe). Setting the attribute later re-freezes/unfreezes; recompile after.

    Why `call` passes `training=False` itself: Keras 3 already runs a non-trainable
    BatchNormalization in inference mode, but a Dropout layer in the encoder (cifar_conv has
    one) would still drop codes at random while the head trains.
    """

    def __init__(self, encoder, head, freeze_encoder=True, **kwargs):
        kwargs.setdefault("name", "classifier")
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        self.freeze_encoder = freeze_encoder
        _build_now(self, encoder)

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        if not self.head.built:
            self.head.build(self.encoder.compute_output_shape(input_shape))
        self.built = True

    @property
    def freeze_encoder(self):
        return self._freeze_encoder

    @freeze_encoder.setter
    def freeze_encoder(self, value):
        self._freeze_encoder = bool(value)
        self.encoder.trainable = not self._freeze_encoder

    def call(self, x, training=None):
        z = self.encoder(x, training=False if self._freeze_encoder else training)
        return self.head(z, training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "head": keras.saving.serialize_keras_object(self.head),
            "freeze_encoder": self._freeze_encoder,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        encoder = keras.saving.deserialize_keras_object(config.pop("encoder"))
        head = keras.saving.deserialize_keras_object(config.pop("head"))
        return cls(encoder, head, **config)


def _build_now(model, encoder):
    """Build at construction when the encoder's input is known (Functional parts), so a model
    saved before its first fit already carries its weights and reloads predicting the same."""
    try:
        input_shape = encoder.input_shape
    except (AttributeError, ValueError):
        return
    model.build(input_shape)


def build_autoencoder(input_shape, latent_dim=128, **config):
    """`Autoencoder` whose encoder and decoder come from the same config (e.g. a preset)."""
    encoder = build_encoder(input_shape, latent_dim, **config)
    decoder = build_decoder(input_shape, latent_dim, **config)
    return Autoencoder(encoder, decoder)


HEADS = {"linear": linear_head, "mlp": mlp_head}


def build_classifier(input_shape, num_classes, latent_dim=128, head="linear", freeze_encoder=False, head_kwargs=None, **config):
    """`Classifier` over a fresh encoder built from `config`; `head` is "linear" or "mlp"."""
    check_positive_int(num_classes, "num_classes", 10)
    if head not in HEADS:
        raise ModelConfigError(f"head must be one of {sorted(HEADS)}, got {head!r}")
    encoder = build_encoder(input_shape, latent_dim, **config)
    head_model = HEADS[head](latent_dim, num_classes, **(head_kwargs or {}))
    return Classifier(encoder, head_model, freeze_encoder=freeze_encoder)
