"""The ``Augmenter``'s TensorFlow implementation: what the tf.data pipelines run, on any backend.

Randomness is stateless: every random draw comes from a seed tensor that the caller passes
(the pipelines derive one per batch from ``tf.data.Dataset.random``), so the same seed gives
the same augmented batches even under a parallel ``tf.data`` map, where stateful seed
generators race. Keras' augmentation layers do the pixel maths (flip, grayscale, brightness,
contrast, hue); their parameters are drawn here because their own
``get_random_transformation`` only takes integer or stateful seeds and reuses one seed for
several draws. Three ops are written with TensorFlow instead: random-resized-crop (Keras has
none), Gaussian blur (Keras' draws one sigma per batch, not per image) and saturation, as
torchvision's blend with the grayscale image -- Keras' HSV round trip costs about 4x more, and
the colour jitter dominates the pipeline's cost.

TensorFlow only: imported when a tf.data pipeline is built or an ``Augmenter`` is called on the
TensorFlow backend. ``Augmenter.draw_parameters`` / ``apply`` are the backend-neutral twins.
"""

import math

import keras
import tensorflow as tf

from keras_latent.data.augment import _COLOUR_JITTER, _LUMA, _pixel_layers

_RNG = "philox"  # fixed: "auto_select" may pick another algorithm under XLA than without


class TFAugmentation:
    """An ``Augmenter``'s settings run as TensorFlow ops: ``(images, seed, flips) -> images``.

    Built once per Augmenter (``Augmenter.tf_augmentation()``), eagerly, before any tf.data map
    traces it. Holds the Keras layers whose ``transform_images`` it uses, set to TensorFlow ops,
    and the XLA-compiled pixel ops.
    """

    def __init__(self, augmenter):
        self.augmenter = augmenter
        self.flip, self.brightness, self.contrast, self.hue, self.grayscale = _tensorflow_layers(augmenter)
        self._pixel_ops_fn = None

    def __call__(self, images, seed=None, flips=None):
        aug = self.augmenter
        images = tf.convert_to_tensor(images, tf.float32)
        aug.check_input_shape(images.shape)
        if seed is None:
            if keras.backend.backend() != "tensorflow":
                raise ValueError(
                    "The TensorFlow augmentation needs seed= (an int tensor of shape (2,)) on the "
                    f"{keras.backend.backend()} backend; the tf.data pipelines pass one per batch."
                )
            seed = aug.seed_generator.next()
        elif aug.seed is not None:
            seed = tf.random.experimental.stateless_fold_in(seed, aug.seed, alg=_RNG)
        seeds = tf.random.experimental.stateless_split(seed, num=12, alg=_RNG)
        if aug.crop_scale is not None:
            images = _random_resized_crop(images, seeds[0], aug.crop_scale, aug.crop_ratio or (1.0, 1.0))
        if aug.translate:
            images = _random_translate(images, seeds[10], aug.translate)
        if self._pixel_ops_fn is None:
            # XLA fuses the ~25 elementwise passes of flip / jitter / grayscale / blur: about 5x
            # faster on CPU. CropAndResize has no XLA kernel, so the crop stays outside, and so
            # do the random draws (XLA's stateless RNG gives other numbers than TensorFlow's).
            self._pixel_ops_fn = tf.function(self.pixel_ops, jit_compile=True) if aug.jit_compile else self.pixel_ops
        drawn = self.draw(tf.shape(images), seeds)
        if flips is not None and aug.horizontal_flip:
            drawn["flip"] = tf.reshape(tf.cast(flips, tf.bool), [-1, 1, 1, 1])
        return self._pixel_ops_fn(images, drawn)

    def draw(self, shape, seeds):
        """Every per-image random parameter of the pixel ops, keyed by op."""
        aug = self.augmenter
        batch = shape[0]

        def uniform(index, low=0.0, high=1.0):
            values = tf.random.stateless_uniform([batch], seeds[index], minval=low, maxval=high, alg=_RNG)
            return tf.reshape(values, [-1, 1, 1, 1])

        drawn = {}
        if aug.horizontal_flip:
            drawn["flip"] = uniform(1) < 0.5
        if aug.jitter_probability and any(getattr(aug, n) for n in _COLOUR_JITTER):
            drawn["jitter"] = uniform(6) < aug.jitter_probability
            if aug.brightness:
                drawn["brightness"] = uniform(2, -aug.brightness, aug.brightness)
            if aug.contrast:
                drawn["contrast"] = uniform(3, 1 - aug.contrast, 1 + aug.contrast)
            if aug.saturation:
                drawn["saturation"] = uniform(4, 1 - aug.saturation, 1 + aug.saturation)
            if aug.hue:
                drawn["hue"] = tf.reshape(uniform(5, -aug.hue, aug.hue), [-1])
        if aug.grayscale_probability:
            drawn["grayscale"] = uniform(7) < aug.grayscale_probability
        if aug.blur_probability:
            drawn["blur"] = uniform(9) < aug.blur_probability
            drawn["blur_sigma"] = tf.reshape(uniform(8, aug.blur_sigma[0], aug.blur_sigma[1]), [-1])
        if aug.mask_ratio or aug.noise_std:
            drawn.update(self._draw_corruption(shape, seeds[11]))
        return drawn

    def _draw_corruption(self, shape, seed):
        """The masked squares (one draw per patch, scaled up to pixels) and the pixel noise."""
        aug = self.augmenter
        drawn = {}
        if aug.mask_ratio:
            patch = aug.mask_patch
            cells = [shape[0], -(-shape[1] // patch), -(-shape[2] // patch), 1]
            keep = tf.random.stateless_uniform(cells, seed, alg=_RNG) >= aug.mask_ratio
            keep = tf.repeat(tf.repeat(keep, patch, axis=1), patch, axis=2)
            drawn["keep"] = keep[:, :shape[1], :shape[2], :]
        if aug.noise_std:
            noise_seed = tf.random.experimental.stateless_fold_in(seed, 1, alg=_RNG)
            drawn["noise"] = aug.noise_std * tf.random.stateless_normal(shape, noise_seed, alg=_RNG)
        return drawn

    def pixel_ops(self, images, drawn):
        """Deterministic given ``drawn``: the part that XLA compiles."""
        if "flip" in drawn:
            images = self.flip.transform_images(images, {"flips": drawn["flip"]})
        if "jitter" in drawn:
            jittered = images
            if "brightness" in drawn:
                jittered = self.brightness.transform_images(jittered, {"rgb_delta": drawn["brightness"]})
            if "contrast" in drawn:
                jittered = self.contrast.transform_images(jittered, {"contrast_factor": drawn["contrast"]})
            if "saturation" in drawn:
                jittered = _adjust_saturation(jittered, drawn["saturation"])
            if "hue" in drawn:
                jittered = self.hue.transform_images(jittered, {"factor": drawn["hue"]})
            images = tf.where(drawn["jitter"], jittered, images)
        if "grayscale" in drawn:
            images = self.grayscale.transform_images(images, drawn["grayscale"])
        if "blur" in drawn:
            blurred = _gaussian_blur(images, drawn["blur_sigma"], self.augmenter.blur_kernel_size)
            images = tf.where(drawn["blur"], blurred, images)
        if "noise" in drawn:
            images = images + drawn["noise"]
        if "keep" in drawn:
            images = tf.where(drawn["keep"], images, 0.5)
        return tf.clip_by_value(images, 0.0, 1.0)


def _tensorflow_layers(augmenter):
    """The Keras layers of the pixel ops, running TensorFlow ops whatever the Keras backend."""
    if keras.backend.backend() == "tensorflow":
        return augmenter._flip, augmenter._brightness, augmenter._contrast, augmenter._hue, augmenter._grayscale
    layers = _pixel_layers()
    for layer in layers:
        layer.backend.set_backend("tensorflow")  # inside tf.data; Keras' own DataLayer.__call__ does this
    return layers


def _random_resized_crop(images, seed, scale, ratio, attempts=10):
    """Per-image random resized crop (Inception / SimCLR style), resized back to the input size."""
    shape = tf.shape(images)
    boxes = _crop_boxes(shape, seed, scale, ratio, attempts)
    return tf.image.crop_and_resize(
        images, boxes, tf.range(shape[0]), tf.stack([shape[1], shape[2]]), method="bilinear"
    )


def _crop_boxes(shape, seed, scale, ratio, attempts=10):
    """``(B, 4)`` normalised ``(y0, x0, y1, x1)`` crop boxes.

    Like torchvision: up to ``attempts`` (area, log-ratio) draws per image, the first that fits
    wins; if none fits, the whole image (for square images that is torchvision's fallback).
    """
    batch, height, width = shape[0], shape[1], shape[2]
    seeds = tf.random.experimental.stateless_split(seed, num=4, alg=_RNG)
    area = tf.random.stateless_uniform([batch, attempts], seeds[0], scale[0], scale[1], alg=_RNG)
    log_ratio = tf.random.stateless_uniform(
        [batch, attempts], seeds[1], math.log(ratio[0]), math.log(ratio[1]), alg=_RNG
    )
    aspect = tf.cast(height, tf.float32) / tf.cast(width, tf.float32)  # H / W
    ratio_wh = tf.exp(log_ratio)
    # Box sides as fractions of the image side: w*h = area * H*W and w/h = ratio (in pixels).
    crop_w = tf.sqrt(area * ratio_wh * aspect)
    crop_h = tf.sqrt(area / ratio_wh / aspect)
    fits = (crop_w <= 1.0) & (crop_h <= 1.0)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    any_fits = tf.reduce_any(fits, axis=1)
    crop_w = tf.where(any_fits, tf.gather(crop_w, first, batch_dims=1), 1.0)
    crop_h = tf.where(any_fits, tf.gather(crop_h, first, batch_dims=1), 1.0)
    offsets = tf.random.stateless_uniform([batch, 2], seeds[2], alg=_RNG)
    y0 = offsets[:, 0] * (1.0 - crop_h)
    x0 = offsets[:, 1] * (1.0 - crop_w)
    return tf.stack([y0, x0, y0 + crop_h, x0 + crop_w], axis=1)


def _random_translate(images, seed, pixels):
    """Shift each image by its own (dy, dx) in [-pixels, pixels], filling by reflection."""
    offsets = _translate_offsets(tf.shape(images), seed, pixels)
    return _translate(images, offsets, pixels)


def _translate_offsets(shape, seed, pixels):
    """``(B, 2)`` int32 (row, column) offsets into the padded image, in [0, 2 * pixels]."""
    return tf.random.stateless_uniform([shape[0], 2], seed, 0, 2 * pixels + 1, dtype=tf.int32, alg=_RNG)


def _translate(images, offsets, pixels):
    """Gathers rows then columns of the reflect-padded batch: exact pixels, no resampling."""
    shape = tf.shape(images)
    height, width = shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]], mode="REFLECT")
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def _adjust_saturation(images, factor):
    """Blend with the luma image (ITU-R 601, as torchvision): 0 = gray, 1 = unchanged."""
    gray = tf.linalg.matvec(images, tf.constant(_LUMA, images.dtype))[..., None]
    return tf.clip_by_value(gray + (images - gray) * factor, 0.0, 1.0)


def _gaussian_blur(images, sigma, kernel_size):
    """Separable Gaussian blur with one ``sigma`` per image, reflect-padded (as SimCLR's).

    Per-image kernels run as ONE depthwise convolution: the batch is folded into the
    channel axis, so each (image, channel) pair gets its own kernel.
    """
    radius = kernel_size // 2
    if radius == 0:
        return images
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    weights = tf.exp(-tf.square(taps)[None, :] / (2.0 * tf.square(sigma)[:, None]))
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)  # (B, k)
    weights = tf.transpose(tf.repeat(weights, channels, axis=0))  # (k, B*C), image-major
    padded = tf.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="REFLECT")
    folded = tf.transpose(padded, [1, 2, 0, 3])  # (H', W', B, C)
    folded = tf.reshape(folded, [1, height + 2 * radius, width + 2 * radius, batch * channels])
    folded = tf.nn.depthwise_conv2d(folded, weights[None, :, :, None], [1, 1, 1, 1], "VALID")
    folded = tf.nn.depthwise_conv2d(folded, weights[:, None, :, None], [1, 1, 1, 1], "VALID")
    return tf.transpose(tf.reshape(folded, [height, width, batch, channels]), [2, 0, 1, 3])
