"""Pipelines over in-memory uint8 arrays without TensorFlow: ``keras.utils.PyDataset``s.

The same builders, signatures and batch structures as ``pipelines.py`` (tf.data), for the JAX
and PyTorch backends where TensorFlow is not installed (``keras_latent.data.input_pipeline``
chooses). Each epoch shuffles the image indices with NumPy, seeded by ``(seed, epoch)``; each
batch gathers its uint8 images on the host, then scales them to [0, 1], augments and
normalises them on the device: the augmentation's random parameters are drawn on the host
(``Augmenter.draw_parameters``, seeded by ``(seed, epoch, batch index)``, so a batch is the
same whichever order Keras asks for it) and its pixel maths run as one compiled call
(``Augmenter.apply``). Labels stay NumPy; images are tensors of the backend.

Keras' adapters take a ``PyDataset``'s batch as ``(inputs,)``, ``(inputs, targets)`` or a
third element, so ``encoding_dataset`` / ``prediction_dataset`` yield ``(x,)`` where tf.data
yields ``x``: ``fit`` / ``predict`` see the same inputs.
"""

import math

import keras
import numpy as np

from keras_latent.data.augment import Augmenter
from keras_latent.data.checks import (
    checked_batch_size,
    checked_contrastive,
    checked_images,
    checked_labels,
    checked_normalize,
    checked_prediction_array,
)


def reconstruction_dataset(images, batch_size, *, augment=None, shuffle=True, seed=0, normalize=None):
    """``(x, x)`` batches for autoencoders; with ``augment``, ``(augmented x, clean x)`` (denoising)."""
    images = checked_images(images)
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])
    return ArrayBatches(images, batch_size, lambda views, x, y: (views[0], x), augment=augment,
                        shuffle=shuffle, seed=seed, normalize=normalize)


def supervised_dataset(images, labels, batch_size, *, augment=None, shuffle=True, seed=0, normalize=None):
    """``(x, y)`` batches, ``y`` int64 class indices."""
    images = checked_images(images)
    labels = checked_labels(labels, len(images))
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])
    return ArrayBatches(images, batch_size, lambda views, x, y: (views[0], y), labels=labels,
                        augment=augment, shuffle=shuffle, seed=seed, normalize=normalize,
                        alternate_flips=getattr(augment, "alternates_flip", False))


def contrastive_dataset(images, batch_size, *, augment, seed=0, with_original=False, normalize=None):
    """``(view_1, view_2)`` -- two independent augmentations of the same images -- for SimCLR.

    ``with_original=True`` adds the clean batch as a third element (the contrastive + denoising
    hybrid reconstructs it). Batches are full (the remainder is dropped): NT-Xent compares
    every image with the rest of its batch.
    """
    images = checked_images(images)
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])
    checked_contrastive(images, batch_size, augment)

    def to_views(views, x, y):
        return (*views, x) if with_original else tuple(views)

    return ArrayBatches(images, batch_size, to_views, views=2, augment=augment, shuffle=True,
                        seed=seed, normalize=normalize, drop_remainder=True)


def encoding_dataset(images, batch_size, *, normalize=None):
    """``(x,)`` batches in the original order, for encoding a whole split (no shuffle, no augment)."""
    images = checked_images(images)
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])
    return ArrayBatches(images, batch_size, lambda views, x, y: (views[0],), shuffle=False,
                        normalize=normalize)


def prediction_dataset(array, batch_size):
    """In-order ``(x,)`` batches of any in-memory array for ``model.predict``: uint8 images
    scaled to [0, 1] a batch at a time (a split never sits in memory as float32), anything
    else as float32."""
    array = checked_prediction_array(array, batch_size)
    if array.dtype != np.uint8:
        array = array.astype("float32", copy=False)
    return ArrayBatches(array, batch_size, lambda views, x, y: (x,), shuffle=False)


class ArrayBatches(keras.utils.PyDataset):
    """Batches of an in-memory array, built by ``element(views, clean, labels)``.

    ``views`` augmented (then normalised) copies of each batch go to ``element`` with the clean
    batch in [0, 1] and the labels (NumPy, or None). ``alternate_flips``: each image's flip is
    random on its first visit and the opposite of its last one after that (airbench), as the
    tf.data pipeline's; every ``__getitem__`` counts as a visit. A batch depends only on
    ``(seed, epoch, index)``, so ``fit(shuffle=True)`` (which permutes the batch order with
    Python's ``random``; the paradigms pass ``shuffle=False``) changes the order, not the batches.
    The keywords are the tf.data builders' options one by one, so both pipelines take the same.
    """

    def __init__(self, images, batch_size, element, *, labels=None, views=1, augment=None,
                 shuffle=True, seed=0, normalize=None, drop_remainder=False, alternate_flips=False):
        super().__init__()
        self.images, self.labels, self.batch_size = images, labels, int(batch_size)
        self.element, self.views, self.normalize = element, views, normalize
        self.shuffle, self.seed, self.drop_remainder = shuffle, seed, drop_remainder
        if isinstance(augment, Augmenter):
            augment.check_input_shape((None, *images.shape[1:]))
            augment = None if augment.is_identity else augment
        self.augment = augment
        self.flip_state = _flip_state(len(images), seed) if alternate_flips else None
        self.epoch = 0
        self.order = self._order()
        self.pipeline_epoch = self  # what paradigms.fitting.PipelineEpochs sets, as on tf.data

    def __len__(self):
        count = len(self.images) / self.batch_size
        return int(count) if self.drop_remainder else math.ceil(count)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = keras.ops.convert_to_tensor(self.images[rows])  # to the device as uint8
        clean = keras.ops.cast(batch, "float32")
        if self.images.dtype == np.uint8:
            clean = clean / 255.0
        rng = np.random.default_rng(self._entropy(index))
        flips = self._next_flips(rows) if self.flip_state is not None else None
        views = [self._normalized(self._augmented(clean, rng, flips)) for _ in range(self.views)]
        labels = None if self.labels is None else self.labels[rows]
        return self.element(views, clean, labels)

    def on_epoch_end(self):
        """Next epoch: new shuffle, new augmentation draws."""
        self.epoch += 1
        self.order = self._order()

    def assign(self, epoch) -> None:
        """Make the next pass that of epoch ``epoch`` (0-based), as if every epoch before it had
        been read once: a resumed run's batches, flips included, are the uninterrupted run's."""
        epoch = int(epoch)
        if epoch == self.epoch:
            return
        if self.flip_state is not None:  # replay each earlier epoch's visits
            self.flip_state = _flip_state(len(self.images), self.seed)
            for past in range(epoch):
                self.epoch = past
                self.flip_state[self._order()[:len(self) * self.batch_size]] ^= 1
        self.epoch = epoch
        self.order = self._order()

    def _order(self):
        if not self.shuffle:
            return np.arange(len(self.images))
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.images))

    def _entropy(self, index):
        """A batch's seed: the pipeline's, the epoch, the batch and the Augmenter's own seed."""
        own = getattr(self.augment, "seed", None)
        return [self.seed, self.epoch, index] + ([] if own is None else [own % 2**64])

    def _augmented(self, images, rng, flips):
        if self.augment is None:
            return images
        if not isinstance(self.augment, Augmenter):
            return self.augment(images)  # any callable on a float32 batch (its own randomness)
        params = self.augment.draw_parameters(images.shape[0], tuple(images.shape[1:]), rng, flips)
        return self.augment.compiled_apply()(images, params)

    def _normalized(self, images):
        if self.normalize is None:
            return images
        mean, std = self.normalize
        return (images - mean) / std

    def _next_flips(self, rows):
        """This visit's flips for ``rows``; the state is toggled so the next visit mirrors them."""
        flips = self.flip_state[rows].astype(bool)
        self.flip_state[rows] = 1 - self.flip_state[rows]
        return flips


def _flip_state(count, seed):
    """One flip bit per image, seeded-random to start with (the first epoch's flips), as the
    tf.data pipeline's."""
    return np.random.default_rng(seed).integers(0, 2, size=count, dtype=np.int32)

