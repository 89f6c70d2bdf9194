"""Augmentation presets (plain dicts) and the seeded, batched ``Augmenter`` layer they build.

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

The layer uses TensorFlow ops (``tf.image.crop_and_resize``), so it needs the TensorFlow backend.
"""

import math

import keras
import tensorflow as tf

# Settings of Augmenter: every preset is a partial dict of these; unset ones keep these values.
DEFAULT_SETTINGS = {
    "crop_scale": None,  # (min, max) area fraction of the random resized crop; None: no crop
    "crop_ratio": (3 / 4, 4 / 3),  # aspect-ratio range of that crop (log-uniform)
    "translate": 0,  # shift by up to this many pixels each way, reflect-padded (airbench: 2)
    "horizontal_flip": False,
    "brightness": 0.0,  # additive delta in [-b, b] (SimCLR v1 / tf.image.random_brightness)
    "contrast": 0.0,  # factor in [1 - c, 1 + c]
    "saturation": 0.0,  # factor in [1 - s, 1 + s] (blend with grayscale, as torchvision)
    "hue": 0.0,  # hue shift in [-h, h] turns of the colour wheel
    "jitter_probability": 0.8,  # chance that an image gets the colour jitter at all
    "grayscale_probability": 0.0,
    "blur_probability": 0.0,
    "blur_sigma": (0.1, 2.0),
    "blur_kernel_size": 3,  # SimCLR: about 10 % of the image side
    # Corruptions for denoising autoencoders (the input is corrupted, the target stays clean):
    "mask_ratio": 0.0,  # chance that each mask_patch x mask_patch square is set to mid-grey
    "mask_patch": 4,
    "noise_std": 0.0,  # standard deviation of additive Gaussian pixel noise
}

_COLOUR_JITTER = ("brightness", "contrast", "saturation", "hue")
_RNG = "philox"  # fixed: "auto_select" may pick another algorithm under XLA than without

# SimCLR's settings are those of its CIFAR-10 experiments (colour strength 0.5, no blur on 32x32).
AUGMENTATION_PRESETS = {
    "rgb": {
        "simclr": {
            "crop_scale": (0.08, 1.0),
            "crop_ratio": (3 / 4, 4 / 3),
            "horizontal_flip": True,
            "brightness": 0.4,
            "contrast": 0.4,
            "saturation": 0.4,
            "hue": 0.1,
            "jitter_probability": 0.8,
            "grayscale_probability": 0.2,
            "blur_probability": 0.0,
        },
        "light": {"crop_scale": (0.7, 1.0), "horizontal_flip": True},
        # The fast CIFAR-10 classifiers' augmentation (airbench): +-2 px shifts and flips.
        "shift_flip": {"translate": 2, "horizontal_flip": True},
        "none": {},
    },
    "gray": {
        # Digits are not mirror-symmetric and have no colour: crops and blur only.
        "simclr": {"crop_scale": (0.6, 1.0), "blur_probability": 0.5},
        "light": {},
        "shift_flip": {"translate": 2},
        "none": {},
    },
}

DATASET_FAMILIES = {"mnist": "gray", "fashion_mnist": "gray", "cifar10": "rgb"}


def mirrors_images(dataset) -> bool:
    """Whether a mirror image still shows the same class in ``dataset`` (a name or a family):
    its "shift_flip" preset flips, and flip test-time augmentation applies. Digits: no."""
    family = DATASET_FAMILIES.get(dataset, dataset)
    return bool(AUGMENTATION_PRESETS.get(family, {}).get("shift_flip", {}).get("horizontal_flip"))


def build_augmentation(dataset, preset, *, strength=1.0, seed=None, **overrides):
    """An ``Augmenter`` for ``dataset`` (a dataset name or a family, "rgb" / "gray").

    ``strength`` scales the colour-jitter amounts of the preset; ``overrides`` replace any
    setting of ``DEFAULT_SETTINGS`` as given (not scaled), and may set ``jit_compile``.
    """
    family = DATASET_FAMILIES.get(dataset, dataset)
    if family not in AUGMENTATION_PRESETS:
        known = sorted(DATASET_FAMILIES) + sorted(AUGMENTATION_PRESETS)
        raise ValueError(f"Unknown dataset or family {dataset!r} for augmentation; known: {known}.")
    presets = AUGMENTATION_PRESETS[family]
    if preset not in presets:
        raise ValueError(f"Unknown augmentation preset {preset!r}; known: {sorted(presets)}.")
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    unknown = sorted(set(overrides) - set(DEFAULT_SETTINGS) - {"jit_compile"})
    if unknown:
        raise ValueError(f"Unknown augmentation settings {unknown}; known: {sorted(DEFAULT_SETTINGS)}.")
    settings = {**DEFAULT_SETTINGS, **presets[preset]}
    for name in _COLOUR_JITTER:
        settings[name] = settings[name] * strength
    settings.update(overrides)
    return Augmenter(**settings, seed=seed, name=f"{family}_{preset}_augmentation")


def resolve_augmentation(dataset, augment, *, strength=1.0, seed=None):
    """What the paradigms accept as ``augment``: ``None``, a preset name, a dict of settings
    (on top of no augmentation, e.g. ``{"crop_scale": (0.8, 1.0)}`` for small shifts and zooms
    of digits), or a ready augmentation callable (returned as is)."""
    if augment is None or callable(augment):
        return augment
    if isinstance(augment, str):
        return build_augmentation(dataset, augment, strength=strength, seed=seed)
    if isinstance(augment, dict):
        return build_augmentation(dataset, "none", seed=seed, **augment)
    raise TypeError(f"augment must be None, a preset name, a dict of settings or a callable, "
                    f"got {type(augment).__name__}.")


@keras.saving.register_keras_serializable(package="keras_latent")
class Augmenter(keras.layers.Layer):
    """SimCLR-style augmentation of a float32 batch in [0, 1], independently per image.

    Order as in SimCLR: random resized crop, horizontal flip, colour jitter (brightness,
    contrast, saturation, hue, with probability ``jitter_probability``), grayscale, blur; then
    the denoising corruptions, Gaussian noise and masked squares (mid-grey). Output is clipped
    to [0, 1]. Call with ``seed=`` (an int tensor of shape (2,)) for reproducible batches;
    without it a ``keras.random.SeedGenerator`` seeded by ``seed`` supplies one, as inside a
    model. ``training=False`` returns the input unchanged.

    Args: see ``DEFAULT_SETTINGS`` (one keyword per setting, so a preset is a plain dict of
    them and ``get_config`` round-trips); ``seed`` (int or None) is mixed into every call's seed;
    ``jit_compile`` compiles everything after the crop with XLA (same results, ~5x faster).

    Reference: Chen et al., "A Simple Framework for Contrastive Learning of Visual
    Representations" (SimCLR), ICML 2020, appendix A.
    """

    def __init__(
        self,
        crop_scale=None,
        crop_ratio=(3 / 4, 4 / 3),
        translate=0,
        horizontal_flip=False,
        brightness=0.0,
        contrast=0.0,
        saturation=0.0,
        hue=0.0,
        jitter_probability=0.8,
        grayscale_probability=0.0,
        blur_probability=0.0,
        blur_sigma=(0.1, 2.0),
        blur_kernel_size=3,
        mask_ratio=0.0,
        mask_patch=4,
        noise_std=0.0,
        seed=None,
        jit_compile=True,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # pixels stay float32 under a mixed policy
        super().__init__(**kwargs)
        self.crop_scale = _pair_or_none(crop_scale, "crop_scale", low=0.0, high=1.0)
        self.crop_ratio = _pair_or_none(crop_ratio, "crop_ratio", low=0.0, high=math.inf)
        self.translate = int(translate)
        if self.translate < 0:
            raise ValueError(f"translate must be a number of pixels >= 0, got {translate}")
        if horizontal_flip not in (True, False, "alternate"):
            raise ValueError(f"horizontal_flip must be True, False or 'alternate', got {horizontal_flip!r}")
        self.horizontal_flip = horizontal_flip if horizontal_flip == "alternate" else bool(horizontal_flip)
        self.brightness = _amount(brightness, "brightness", high=1.0)
        self.contrast = _amount(contrast, "contrast", high=1.0)
        self.saturation = _amount(saturation, "saturation", high=1.0)
        self.hue = _amount(hue, "hue", high=0.5)
        self.jitter_probability = _amount(jitter_probability, "jitter_probability", high=1.0)
        self.grayscale_probability = _amount(grayscale_probability, "grayscale_probability", high=1.0)
        self.blur_probability = _amount(blur_probability, "blur_probability", high=1.0)
        self.blur_sigma = _pair_or_none(blur_sigma, "blur_sigma", low=0.0, high=math.inf)
        if int(blur_kernel_size) < 1 or int(blur_kernel_size) % 2 == 0:
            raise ValueError(f"blur_kernel_size must be a positive odd integer, got {blur_kernel_size}")
        self.blur_kernel_size = int(blur_kernel_size)
        self.mask_ratio = _amount(mask_ratio, "mask_ratio", high=1.0)
        if int(mask_patch) < 1:
            raise ValueError(f"mask_patch must be a positive number of pixels, got {mask_patch}")
        self.mask_patch = int(mask_patch)
        self.noise_std = _amount(noise_std, "noise_std", high=1.0)
        self.seed = seed
        self.jit_compile = bool(jit_compile)
        self._pixel_ops_fn = None
        self.seed_generator = keras.random.SeedGenerator(seed)
        # Keras layers used only for their (deterministic) transform_images.
        value_range = (0.0, 1.0)
        self._flip = keras.layers.RandomFlip("horizontal", dtype="float32")
        self._brightness = keras.layers.RandomBrightness(0.0, value_range=value_range, dtype="float32")
        self._contrast = keras.layers.RandomContrast(0.0, value_range=value_range, dtype="float32")
        self._hue = keras.layers.RandomHue(0.0, value_range=value_range, dtype="float32")
        self._grayscale = keras.layers.RandomGrayscale(0.0, dtype="float32")

    @property
    def is_identity(self):
        """True when no setting changes the image (the "none" preset): pipelines skip the call."""
        return (
            self.crop_scale is None
            and not self.translate
            and not self.horizontal_flip
            and not (self.jitter_probability and any(getattr(self, n) for n in _COLOUR_JITTER))
            and not self.grayscale_probability
            and not self.blur_probability
            and not self.mask_ratio
            and not self.noise_std
        )

    def build(self, input_shape):
        channels = input_shape[-1]
        if len(input_shape) != 4:
            raise ValueError(f"Augmenter expects a batch (B, H, W, C); got shape {tuple(input_shape)}")
        needs_rgb = [n for n in ("saturation", "hue", "grayscale_probability") if getattr(self, n)]
        if channels != 3 and needs_rgb:
            raise ValueError(
                f"{needs_rgb} need RGB images, but the batch has {channels} channel(s); "
                "set them to 0 (the 'gray' presets do)."
            )

    @property
    def alternates_flip(self):
        """``horizontal_flip="alternate"``: the pipeline passes each image's ``flips`` (random the
        first time an image is seen, the opposite of last time after that, as airbench)."""
        return self.horizontal_flip == "alternate"

    def call(self, images, training=True, seed=None, flips=None):
        if not training or self.is_identity:
            return images
        images = tf.convert_to_tensor(images, tf.float32)
        if seed is None:
            seed = self.seed_generator.next()
        elif self.seed is not None:
            seed = tf.random.experimental.stateless_fold_in(seed, self.seed, alg=_RNG)
        seeds = tf.random.experimental.stateless_split(seed, num=12, alg=_RNG)
        if self.crop_scale is not None:
            images = _random_resized_crop(images, seeds[0], self.crop_scale, self.crop_ratio or (1.0, 1.0))
        if self.translate:
            images = _random_translate(images, seeds[10], self.translate)
        if self._pixel_ops_fn is None:
            # XLA fuses the ~25 elementwise passes of flip / jitter / grayscale / blur: about 5x
            # faster on CPU. CropAndResize has no XLA kernel, so the crop stays outside, and so
            # do the random draws (XLA's stateless RNG gives other numbers than TensorFlow's).
            self._pixel_ops_fn = (
                tf.function(self._pixel_ops, jit_compile=True) if self.jit_compile else self._pixel_ops
            )
        drawn = self._draw(tf.shape(images), seeds)
        if flips is not None and self.horizontal_flip:
            drawn["flip"] = tf.reshape(tf.cast(flips, tf.bool), [-1, 1, 1, 1])
        return self._pixel_ops_fn(images, drawn)

    def _draw(self, shape, seeds):
        """Every per-image random parameter of the pixel ops, keyed by op."""
        batch = shape[0]

        def uniform(index, low=0.0, high=1.0):
            values = tf.random.stateless_uniform([batch], seeds[index], minval=low, maxval=high, alg=_RNG)
            return tf.reshape(values, [-1, 1, 1, 1])

        drawn = {}
        if self.horizontal_flip:
            drawn["flip"] = uniform(1) < 0.5
        if self.jitter_probability and any(getattr(self, n) for n in _COLOUR_JITTER):
            drawn["jitter"] = uniform(6) < self.jitter_probability
            if self.brightness:
                drawn["brightness"] = uniform(2, -self.brightness, self.brightness)
            if self.contrast:
                drawn["contrast"] = uniform(3, 1 - self.contrast, 1 + self.contrast)
            if self.saturation:
                drawn["saturation"] = uniform(4, 1 - self.saturation, 1 + self.saturation)
            if self.hue:
                drawn["hue"] = tf.reshape(uniform(5, -self.hue, self.hue), [-1])
        if self.grayscale_probability:
            drawn["grayscale"] = uniform(7) < self.grayscale_probability
        if self.blur_probability:
            drawn["blur"] = uniform(9) < self.blur_probability
            drawn["blur_sigma"] = tf.reshape(uniform(8, self.blur_sigma[0], self.blur_sigma[1]), [-1])
        if self.mask_ratio or self.noise_std:
            drawn.update(self._draw_corruption(shape, seeds[11]))
        return drawn

    def _draw_corruption(self, shape, seed):
        """The masked squares (one draw per patch, scaled up to pixels) and the pixel noise."""
        drawn = {}
        if self.mask_ratio:
            patch = self.mask_patch
            cells = [shape[0], -(-shape[1] // patch), -(-shape[2] // patch), 1]
            keep = tf.random.stateless_uniform(cells, seed, alg=_RNG) >= self.mask_ratio
            keep = tf.repeat(tf.repeat(keep, patch, axis=1), patch, axis=2)
            drawn["keep"] = keep[:, :shape[1], :shape[2], :]
        if self.noise_std:
            noise_seed = tf.random.experimental.stateless_fold_in(seed, 1, alg=_RNG)
            drawn["noise"] = self.noise_std * tf.random.stateless_normal(shape, noise_seed, alg=_RNG)
        return drawn

    def _pixel_ops(self, images, drawn):
        """Deterministic given ``drawn``: the part that XLA compiles."""
        if "flip" in drawn:
            images = self._flip.transform_images(images, {"flips": drawn["flip"]})
        if "jitter" in drawn:
            jittered = images
            if "brightness" in drawn:
                jittered = self._brightness.transform_images(jittered, {"rgb_delta": drawn["brightness"]})
            if "contrast" in drawn:
                jittered = self._contrast.transform_images(jittered, {"contrast_factor": drawn["contrast"]})
            if "saturation" in drawn:
                jittered = _adjust_saturation(jittered, drawn["saturation"])
            if "hue" in drawn:
                jittered = self._hue.transform_images(jittered, {"factor": drawn["hue"]})
            images = tf.where(drawn["jitter"], jittered, images)
        if "grayscale" in drawn:
            images = self._grayscale.transform_images(images, drawn["grayscale"])
        if "blur" in drawn:
            blurred = _gaussian_blur(images, drawn["blur_sigma"], self.blur_kernel_size)
            images = tf.where(drawn["blur"], blurred, images)
        if "noise" in drawn:
            images = images + drawn["noise"]
        if "keep" in drawn:
            images = tf.where(drawn["keep"], images, 0.5)
        return tf.clip_by_value(images, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in DEFAULT_SETTINGS})
        config.update({"seed": self.seed, "jit_compile": self.jit_compile})
        return config


def _random_resized_crop(images, seed, scale, ratio, attempts=10):
    """Per-image random resized crop (Inception / SimCLR style), resized back to the input size.

    Like torchvision: up to ``attempts`` (area, log-ratio) draws per image, the first that fits
    wins; if none fits, the whole image (for square images that is torchvision's fallback).
    """
    shape = tf.shape(images)
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
    boxes = tf.stack([y0, x0, y0 + crop_h, x0 + crop_w], axis=1)
    return tf.image.crop_and_resize(
        images, boxes, tf.range(batch), tf.stack([height, width]), method="bilinear"
    )


def _random_translate(images, seed, pixels):
    """Shift each image by its own (dy, dx) in [-pixels, pixels], filling by reflection.

    Gathers rows then columns of the reflect-padded batch: exact pixels, no resampling.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    padded = tf.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform([batch, 2], seed, 0, 2 * pixels + 1, dtype=tf.int32, alg=_RNG)
    rows = offsets[:, :1] + tf.range(height)[None, :]
    cols = offsets[:, 1:] + tf.range(width)[None, :]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(images, cols, axis=2, batch_dims=1)


def _adjust_saturation(images, factor):
    """Blend with the luma image (ITU-R 601, as torchvision): 0 = gray, 1 = unchanged."""
    gray = tf.linalg.matvec(images, tf.constant(_LUMA, images.dtype))[..., None]
    return tf.clip_by_value(gray + (images - gray) * factor, 0.0, 1.0)


# Plain numbers, not a tf.constant: a tensor made at import starts TensorFlow's runtime, after
# which MultiWorkerMirroredStrategy can no longer be created.
_LUMA = (0.299, 0.587, 0.114)


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


def _amount(value, name, high):
    value = float(value)
    if not 0.0 <= value <= high:
        raise ValueError(f"{name} must be in [0, {high}], got {value}")
    return value


def _pair_or_none(value, name, low, high):
    if value is None:
        return None
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (min, max), got {value!r}") from None
    if not low <= first <= second <= high or second <= 0.0:
        raise ValueError(f"{name} must satisfy {low} <= min <= max <= {high} (and max > 0), got {value!r}")
    return (first, second)
