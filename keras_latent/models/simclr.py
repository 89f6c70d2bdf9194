"""SimCLR: an encoder trained with NT-Xent on two views, optionally with a denoising decoder."""

import keras
from keras import ops

from keras_latent import backend
from keras_latent.losses.ntxent import _check_temperature, contrastive_accuracy, nt_xent


def _static_shape(tensor):
    return tuple(tensor.shape)


def _same_known_dims(a, b):
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


@keras.saving.register_keras_serializable(package="keras_latent")
class SimCLR(keras.Model):
    """Contrastive representation learning: pull two views of an image together.

    Each training batch holds two augmented views of the same N images. The encoder maps both
    to latent codes, the projection head maps those to the space where NT-Xent compares them;
    the head is thrown away afterwards and the encoder's codes are the representation, which
    is why ``call`` (and so ``predict``) returns the latent code, not the projection.

    With a ``decoder`` the model becomes a contrastive + denoising hybrid: batches are
    ``(view_1, view_2, x_clean)`` and the loss adds ``reconstruction_weight`` times the error of
    ``decoder(encoder(view))`` against the clean image, for both views.

    The loss and metrics are written once in ``keras.ops``; the step around them is each
    backend's own (``keras_latent.backend``), so SimCLR trains on TensorFlow, JAX and PyTorch.
    Every image is contrasted with the whole global batch on several devices too: on JAX
    (``keras.distribution.DataParallel``) one program sees the global batch; under a
    ``tf.distribute`` strategy each replica gathers the others' projections (``all_gather``),
    so the loss and the gradients equal those of one device holding the global batch, and
    batch-norm layers normalise per replica unless built with ``synchronized=True``
    (``train_simclr`` sets it under several replicas).

    Under the ``"mixed_float16"`` policy the losses are computed in float32 and the loss is
    scaled with ``optimizer.scale_loss`` (``compile`` wraps the optimizer in a
    ``LossScaleOptimizer``).

    Args:
        encoder: a Keras model mapping images ``(B, H, W, C)`` to codes ``(B, latent_dim)``.
        projection_head: a Keras model mapping codes to the projections NT-Xent compares.
        temperature: NT-Xent temperature, > 0.
        decoder: optional Keras model mapping codes back to images (the hybrid).
        reconstruction_weight: weight of the reconstruction loss, >= 0; needs a ``decoder``
            when > 0. With a decoder and weight 0 the reconstruction loss is only tracked.
        reconstruction_loss: a Keras loss identifier (``"mae"``, ``"mse"``) or Loss object.
        **kwargs: passed to ``keras.Model`` (``name``, ...).

    Metrics: ``loss`` (the total), ``contrastive_accuracy`` (how often an anchor's most similar
    embedding is its partner view) and, with a decoder, ``reconstruction_loss``.

    Example:

    ```python
    encoder = build_encoder((28, 28, 1), latent_dim=64, kind="conv")
    model = SimCLR(encoder, projection_head(64, hidden_dim=128, output_dim=64))
    model.compile(optimizer="adam")
    model.fit(contrastive_dataset(images, 256, augment=augment), epochs=10)
    codes = model.predict(x_test)
    ```

    Reference: Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning
    of Visual Representations", ICML 2020 (https://arxiv.org/abs/2002.05709).
    """

    def __init__(self, encoder, projection_head, temperature=0.5, decoder=None,
                 reconstruction_weight=0.0, reconstruction_loss="mae", **kwargs):
        super().__init__(**kwargs)
        # -- settings
        self.temperature = _check_temperature(temperature)
        reconstruction_weight = float(reconstruction_weight)
        if not reconstruction_weight >= 0:
            raise ValueError(f"reconstruction_weight must be >= 0, got {reconstruction_weight}")
        if reconstruction_weight > 0 and decoder is None:
            raise ValueError(
                f"reconstruction_weight={reconstruction_weight} needs a decoder: pass "
                "decoder=build_decoder(...) or set reconstruction_weight=0."
            )
        self.reconstruction_weight = reconstruction_weight
        self.reconstruction_loss = reconstruction_loss
        try:
            self._reconstruction_fn = keras.losses.get(reconstruction_loss)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"reconstruction_loss={reconstruction_loss!r} is not a Keras loss; use e.g. "
                f"'mae' or 'mse' ({error})"
            ) from None

        # -- parts
        self.encoder = encoder
        self.projection_head = projection_head
        self.decoder = decoder

        # -- metrics
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy_tracker = keras.metrics.Mean(name="contrastive_accuracy")
        self.reconstruction_tracker = (
            keras.metrics.Mean(name="reconstruction_loss") if decoder is not None else None
        )

        # Built now, not at the first call: train_step never calls the model itself, and a
        # model saved unbuilt reloads without its optimizer state.
        if self.encoder.built:
            self.build(self.encoder.input_shape)

    @property
    def metrics(self):
        trackers = [self.loss_tracker, self.accuracy_tracker]
        if self.reconstruction_tracker is not None:
            trackers.append(self.reconstruction_tracker)
        return trackers

    def build(self, input_shape):
        # The parts are usually built Functional models already; build any that are not.
        if not self.encoder.built:
            self.encoder.build(input_shape)
        self.built = True

    def call(self, x, training=None):
        return self.encoder(x, training=training)

    # -- training ---------------------------------------------------------------------------

    def train_step(self, *args):
        return backend.train_step(self, *args)

    def test_step(self, *args):
        return backend.test_step(self, *args)

    def step_losses(self, data, training):
        """``(loss, logs)`` of one batch: NT-Xent, its accuracy and, with a decoder, the
        reconstruction loss; the part of a step every backend shares."""
        view_1, view_2, x_clean = self._unpack(data)
        n = ops.shape(view_1)[0]
        # One pass over both views: faster, and batch norm sees the same 2N images NT-Xent does.
        codes = self.encoder(ops.concatenate([view_1, view_2], axis=0), training=training)
        projections = ops.cast(self.projection_head(codes, training=training), "float32")
        z_1, z_2 = projections[:n], projections[n:]
        negatives = self._other_replicas_projections(z_1, z_2)

        contrastive = nt_xent(z_1, z_2, self.temperature, negatives=negatives)
        logs = {"contrastive_accuracy": contrastive_accuracy(z_1, z_2, negatives=negatives)}
        loss = contrastive
        if self.decoder is not None:
            reconstructed = ops.cast(self.decoder(codes, training=training), "float32")
            target = ops.cast(ops.concatenate([x_clean, x_clean], axis=0), "float32")
            reconstruction = ops.mean(self._reconstruction_fn(target, reconstructed))
            logs["reconstruction_loss"] = reconstruction
            loss = loss + self.reconstruction_weight * reconstruction
        return loss, logs

    def _other_replicas_projections(self, z_1, z_2):
        """Both views' projections held by the other ``tf.distribute`` replicas (``None`` on
        one device and on JAX, where the step already sees the global batch)."""
        if backend.num_replicas() == 1:
            return None
        others = backend.other_replicas_rows(ops.concatenate([z_1, z_2], axis=-1))
        others_1, others_2 = ops.split(others, 2, axis=-1)
        return ops.concatenate([others_1, others_2], axis=0)

    def record_metrics(self, loss, logs):
        """Update the trackers with one step's values; their results are the step's logs."""
        self.loss_tracker.update_state(loss)
        self.accuracy_tracker.update_state(logs["contrastive_accuracy"])
        if self.reconstruction_tracker is not None:
            self.reconstruction_tracker.update_state(logs["reconstruction_loss"])
        return {metric.name: metric.result() for metric in self.metrics}

    # -- input checks -----------------------------------------------------------------------

    def _unpack(self, data):
        """``(view_1, view_2)`` or ``(view_1, view_2, x_clean)``, with shapes checked early."""
        if isinstance(data, (tuple, list)) and len(data) == 1:
            data = data[0]  # fit(x=(view_1, view_2)) arrives as ((view_1, view_2),)
        if isinstance(data, (tuple, list)) and len(data) == 2 and isinstance(data[0], (tuple, list)):
            data = (*data[0], data[1])  # fit(x=(view_1, view_2), y=x_clean)
        expected = "(view_1, view_2, x_clean)" if self.decoder is not None else "(view_1, view_2)"
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError(
                f"SimCLR trains on batches of {expected}, got {type(data).__name__}; build them "
                "with keras_latent.data.contrastive_dataset(..., with_original=...)."
            )
        if self.decoder is not None and len(data) != 3:
            raise ValueError(
                "SimCLR with a decoder trains on (view_1, view_2, x_clean) batches: use "
                "contrastive_dataset(..., with_original=True)."
            )
        view_1, view_2 = data[0], data[1]
        x_clean = data[2] if len(data) == 3 else None
        self._check_views(view_1, view_2, x_clean)
        return view_1, view_2, x_clean

    def _check_views(self, view_1, view_2, x_clean):
        shape_1, shape_2 = _static_shape(view_1), _static_shape(view_2)
        if not _same_known_dims(shape_1, shape_2):
            raise ValueError(
                f"The two views must have the same shape, got {shape_1} and {shape_2}; pass two "
                "augmentations of the same batch of images."
            )
        if shape_1[0] == 1 and backend.num_replicas() == 1:
            raise ValueError(
                "NT-Xent needs at least 2 images per batch (the other images are the negatives); "
                "got a batch of 1. Use batch_size >= 2 (SimCLR works best with hundreds)."
            )
        expected = tuple(self.encoder.input_shape)
        if not _same_known_dims(shape_1, expected):
            raise ValueError(
                f"Views of shape {shape_1} do not fit the encoder, which takes {expected}; build "
                "the encoder for the dataset's image shape."
            )
        if x_clean is not None and not _same_known_dims(_static_shape(x_clean), shape_1):
            raise ValueError(
                f"x_clean has shape {_static_shape(x_clean)} but the views have {shape_1}; the "
                "hybrid reconstructs the clean version of the same images."
            )

    # -- serialisation ----------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            encoder=keras.saving.serialize_keras_object(self.encoder),
            projection_head=keras.saving.serialize_keras_object(self.projection_head),
            decoder=(keras.saving.serialize_keras_object(self.decoder)
                     if self.decoder is not None else None),
            temperature=self.temperature,
            reconstruction_weight=self.reconstruction_weight,
            reconstruction_loss=(self.reconstruction_loss
                                 if isinstance(self.reconstruction_loss, str)
                                 else keras.saving.serialize_keras_object(self.reconstruction_loss)),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "projection_head", "decoder"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        if isinstance(config.get("reconstruction_loss"), dict):
            config["reconstruction_loss"] = keras.saving.deserialize_keras_object(
                config["reconstruction_loss"])
        return cls(**config)
