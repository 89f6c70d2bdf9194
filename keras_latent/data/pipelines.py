"""tf.data builders: uint8 arrays in, float32 batches in [0, 1] out, shuffled, augmented, prefetched.

All four share one shape: a full, seeded shuffle of example *indices* (reshuffled every epoch),
batched first, then one parallel map per batch that gathers the uint8 images, casts them to
float32 / 255 and augments the whole batch at once. Under ``tf.distribute`` each global batch is
split across replicas and workers (auto-shard policy DATA). Shuffling indices rather than images keeps
the shuffle buffer tiny (no copy of the images) and makes the gather a single batched op.

Every epoch is a pure function of ``(seed, epoch index)``: its shuffle and each batch's
stateless augmentation seed are drawn from them, so the parallel map cannot reorder the
randomness and a resumed run's epoch k is the uninterrupted run's epoch k. Each pass over a
pipeline takes the next epoch index (``dataset.pipeline_epoch``, a ``PipelineEpoch``);
``paradigms.fitting.fit`` sets it to Keras' epoch at every epoch's start.

``normalize=(mean, std)`` standardises the model's *inputs* only; reconstruction targets and
the clean image of ``with_original`` stay in [0, 1].

TensorFlow only (imported when a pipeline is built, on any Keras backend: Keras feeds tf.data to
JAX and PyTorch too); ``arrays.py`` has the same builders without TensorFlow.
"""

import numpy as np
import tensorflow as tf

from keras_latent.data.augment import Augmenter
from keras_latent.data.checks import (
    checked_batch_size,
    checked_contrastive,
    checked_images,
    checked_labels,
    checked_normalize,
    checked_prediction_array,
)

AUTOTUNE = tf.data.AUTOTUNE


def reconstruction_dataset(images, batch_size, *, augment=None, shuffle=True, seed=0, normalize=None):
    """``(x, x)`` batches for autoencoders; with ``augment``, ``(augmented x, clean x)`` (denoising)."""
    images = checked_images(images)
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])

    def to_pair(x, batch_seed):
        return _normalized(_augmented(augment, x, batch_seed), normalize), x

    return _batched(images, None, batch_size, to_pair, augment, shuffle, seed, drop_remainder=False)


def supervised_dataset(images, labels, batch_size, *, augment=None, shuffle=True, seed=0, normalize=None):
    """``(x, y)`` batches, ``y`` int64 class indices."""
    images = checked_images(images)
    labels = checked_labels(labels, len(images))
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])

    def to_pair(x, y, batch_seed, flips=None):
        return _normalized(_augmented(augment, x, batch_seed, flips), normalize), y

    return _batched(images, labels, batch_size, to_pair, augment, shuffle, seed, drop_remainder=False,
                    alternate_flips=getattr(augment, "alternates_flip", False))


def contrastive_dataset(images, batch_size, *, augment, seed=0, with_original=False, normalize=None):
    """``(view_1, view_2)`` -- two independent augmentations of the same images -- for SimCLR.

    ``with_original=True`` adds the clean batch as a third element (the contrastive + denoising
    hybrid reconstructs it). Batches are full (``drop_remainder``): NT-Xent compares every
    image with the rest of its batch.
    """
    images = checked_images(images)
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])
    checked_contrastive(images, batch_size, augment)

    def to_views(x, batch_seed):
        seeds = tf.random.experimental.stateless_split(batch_seed, num=2)
        view_1 = _normalized(_augmented(augment, x, seeds[0]), normalize)
        view_2 = _normalized(_augmented(augment, x, seeds[1]), normalize)
        return (view_1, view_2, x) if with_original else (view_1, view_2)

    return _batched(images, None, batch_size, to_views, augment, True, seed, drop_remainder=True)


def encoding_dataset(images, batch_size, *, normalize=None):
    """``x`` batches in the original order, for encoding a whole split (no shuffle, no augment)."""
    images = checked_images(images)
    checked_batch_size(batch_size)
    normalize = checked_normalize(normalize, images.shape[-1])

    def to_input(x, batch_seed):
        return _normalized(x, normalize)

    return _batched(images, None, batch_size, to_input, None, False, 0, drop_remainder=False)


def prediction_dataset(array, batch_size):
    """In-order batches of any in-memory array for ``model.predict``: uint8 images scaled to
    [0, 1] a batch at a time (a split never sits in memory as float32), anything else as float32.

    Keras' own adapter for a NumPy array leaves tf.data autotuning on, and deleting its
    iterator stalled a ``predict`` call by seconds now and then (docs/PERFORMANCE.md).
    """
    array = checked_prediction_array(array, batch_size)
    if array.dtype == np.uint8:
        data = tf.data.Dataset.from_tensor_slices(array).batch(batch_size)
        data = data.map(lambda x: tf.cast(x, tf.float32) / 255.0, num_parallel_calls=AUTOTUNE)
    else:
        data = tf.data.Dataset.from_tensor_slices(array.astype("float32", copy=False))
        data = data.batch(batch_size)
    return data.prefetch(AUTOTUNE).with_options(_pipeline_options())


# --------------------------------------------------------------------------------------------


def _batched(images, labels, batch_size, to_element, augment, shuffle, seed, drop_remainder,
             alternate_flips=False):
    """Index shuffle -> batch -> one parallel map (gather, /255, ``to_element``) -> prefetch.

    ``alternate_flips``: ``to_element`` also gets each image's flip, random in the first epoch
    and mirrored in every epoch after (airbench's alternating flip: over two epochs each image
    is seen both ways, instead of by chance). The dataset's ``pipeline_epoch`` holds the
    epoch index its next pass uses.
    """
    if isinstance(augment, Augmenter) and not augment.is_identity:
        augment.tf_augmentation()  # built eagerly, before the map traces it
    images = tf.convert_to_tensor(images)
    labels = None if labels is None else tf.convert_to_tensor(labels)
    count = int(images.shape[0])
    epoch = PipelineEpoch()
    # Each pass yields (index, its batch's seed, epoch index) per example in the epoch's order.
    passes = tf.data.Dataset.range(1).flat_map(
        lambda _: _one_pass(count, batch_size, shuffle, seed, epoch))
    passes = passes.apply(tf.data.experimental.assert_cardinality(count))
    batched = passes.batch(batch_size, drop_remainder=drop_remainder)
    first_flips = tf.constant(_first_flips(count, seed)) if alternate_flips else None

    def load(index, batch_seeds, epoch_indices):
        batch_seed, epoch_index = batch_seeds[0], epoch_indices[0]  # the same for the batch
        x = tf.cast(tf.gather(images, index), tf.float32) / 255.0
        extra = {} if first_flips is None else {"flips": _flips(first_flips, index, epoch_index)}
        if labels is None:
            return to_element(x, batch_seed, **extra)
        return to_element(x, tf.gather(labels, index), batch_seed, **extra)

    dataset = batched.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    dataset = dataset.prefetch(AUTOTUNE).with_options(_pipeline_options())
    dataset.pipeline_epoch = epoch
    return dataset


class PipelineEpoch:
    """The epoch index a pipeline's next pass uses, kept in Python and read once a pass (a
    TensorFlow variable made in a strategy's scope, where some paradigms build their pipelines,
    would be a distributed one)."""

    def __init__(self):
        self.value = 0

    def assign(self, epoch) -> None:
        """Make the next pass that of epoch ``epoch`` (0-based)."""
        self.value = int(epoch)

    def take(self):
        """This pass's index; the next pass gets the one after (a pipeline iterated by hand
        reshuffles every pass)."""
        index, self.value = self.value, self.value + 1
        return np.int64(index)


def _one_pass(count, batch_size, shuffle, seed, epoch):
    """One epoch's ``(index, its batch's stateless seed, epoch index)`` per example, in the
    epoch's order, all drawn from ``(seed, epoch index)``; the index is taken from ``epoch``
    (a ``PipelineEpoch``)."""
    index = tf.py_function(epoch.take, [], tf.int64)
    index.set_shape([])
    key = tf.stack([tf.constant(seed, tf.int64), index])
    keys = tf.random.experimental.stateless_split(key, num=2)
    order = tf.range(count, dtype=tf.int64)
    if shuffle:
        order = tf.gather(order, tf.argsort(tf.random.stateless_uniform([count], seed=keys[0])))
    seeds = tf.random.stateless_uniform([-(-count // batch_size), 2], seed=keys[1], minval=None,
                                        maxval=None, dtype=tf.int64)
    batch_of = tf.range(count, dtype=tf.int64) // batch_size
    return tf.data.Dataset.from_tensor_slices(
        (order, tf.gather(seeds, batch_of), tf.fill([count], index)))


def _pipeline_options():
    """Shard by data, and no model-based autotuning.

    Under a multi-worker strategy every worker builds the same global batches (same seeds)
    and keeps its share of each: in-memory arrays have no files for TensorFlow's default
    (FILE, then DATA with a warning) to shard by.

    Autotuning is off because its optimisation thread stalled training: ``fit`` makes a new
    iterator every epoch, and deleting the old one waited idle (in
    ``RootDataset::Iterator::~Iterator``) for that thread, up to about a minute, in some epochs
    of the CIFAR-10 runs. Turning it off cost no measurable throughput (docs/PERFORMANCE.md).
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    options.autotune.enabled = False
    return options


def _first_flips(count, seed):
    """One flip bit per image, seeded-random: the first epoch's flips."""
    return np.random.default_rng(seed).integers(0, 2, size=count, dtype=np.int32)


def _flips(first_flips, index, epoch_index):
    """The flips of epoch ``epoch_index`` for ``index``: the first epoch's, mirrored in every
    odd epoch (each image is visited once an epoch)."""
    parity = tf.cast(epoch_index % 2, tf.int32)
    return tf.bitwise.bitwise_xor(tf.gather(first_flips, index), parity)


def _augmented(augment, x, seed, flips=None):
    if augment is None or (isinstance(augment, Augmenter) and augment.is_identity):
        return x
    if isinstance(augment, Augmenter):
        # The TensorFlow ops themselves, not the Keras layer: inside tf.data on any backend.
        return augment.tf_augmentation()(x, seed, flips)
    return augment(x)  # any callable on a float32 batch (its own randomness: not reproducible)


def _normalized(x, normalize):
    if normalize is None:
        return x
    mean, std = normalize
    return (x - mean) / std
