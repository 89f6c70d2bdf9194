"""Augmentation presets (plain dicts) and the seeded, batched ``Augmenter`` layer they build.

One set of settings, two implementations with the same parameter distributions:

- TensorFlow (``augment_tf.py``, imported only when used): what the tf.data pipelines run, on
  any Keras backend, with stateless per-batch seeds; also ``Augmenter.__call__`` on the
  TensorFlow backend.
- Backend-neutral (here): ``draw_parameters`` draws every per-image random number on the host
  with NumPy (crop boxes, flip bits, jitter factors...: tiny arrays), then ``apply`` does the
  pixel maths in ``keras.ops`` on the device, compiled once. The array pipelines
  (``arrays.py``) use it where TensorFlow is not installed; ``__call__`` on JAX / PyTorch too.

Keras' augmentation layers do the pixel maths of flip, grayscale, brightness, contrast and hue
through their deterministic ``transform_images``; the parameters are drawn here because their
own ``get_random_transformation`` draws one seed for several draws. Random resized crop (Keras
has none), Gaussian blur (Keras' draws one sigma per batch, not per image) and saturation (as
torchvision's blend with the grayscale image: Keras' HSV round trip costs about 4x more) are
written here. Importing this module imports no TensorFlow.
"""

import math

import keras
import numpy as np

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
# Plain numbers, not a tensor: a tf.constant made at import starts TensorFlow's runtime, after
# which MultiWorkerMirroredStrategy can no longer be created.
_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights, as torchvision's grayscale

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
    model. ``training=False`` returns the input unchanged. On the TensorFlow backend a call runs
    the TensorFlow ops of ``augment_tf``; on JAX / PyTorch it draws the parameters on the host
    and runs ``apply`` (so only eagerly, outside a compiled function).

    Args: see ``DEFAULT_SETTINGS`` (one keyword per setting, so a preset is a plain dict of
    them and ``get_config`` round-trips); ``seed`` (int or None) is mixed into every call's seed;
    ``jit_compile`` compiles the pixel ops (XLA on TensorFlow and JAX: same results, ~5x faster).

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
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._flip, self._brightness, self._contrast, self._hue, self._grayscale = _pixel_layers()
        self._tf_augmentation = None
        self._compiled_apply = None
        self._host_rng = np.random.default_rng(None if seed is None else seed % 2**64)  # calls without seed=

    @property
    def is_identity(self):
        """True when no setting changes the image (the "none" preset): pipelines skip the call."""
        return (
            self.crop_scale is None
            and not self.translate
            and not self.horizontal_flip
            and not self._jitters
            and not self.grayscale_probability
            and not self.blur_probability
            and not self.mask_ratio
            and not self.noise_std
        )

    @property
    def _jitters(self):
        return bool(self.jitter_probability and any(getattr(self, n) for n in _COLOUR_JITTER))

    @property
    def alternates_flip(self):
        """``horizontal_flip="alternate"``: the pipeline passes each image's ``flips`` (random the
        first time an image is seen, the opposite of last time after that, as airbench)."""
        return self.horizontal_flip == "alternate"

    def build(self, input_shape):
        self.check_input_shape(input_shape)

    def check_input_shape(self, shape):
        """A batch ``(B, H, W, C)``, RGB when a setting needs colour; both pipelines call it."""
        if len(shape) != 4:
            raise ValueError(f"Augmenter expects a batch (B, H, W, C); got shape {tuple(shape)}")
        needs_rgb = [n for n in ("saturation", "hue", "grayscale_probability") if getattr(self, n)]
        if shape[-1] != 3 and needs_rgb:
            raise ValueError(
                f"{needs_rgb} need RGB images, but the batch has {shape[-1]} channel(s); "
                "set them to 0 (the 'gray' presets do)."
            )

    def call(self, images, training=True, seed=None, flips=None):
        if not training or self.is_identity:
            return images
        if keras.backend.backend() == "tensorflow":
            return self.tf_augmentation()(images, seed, flips)
        if _traced(images):
            raise ValueError(
                f"On the {keras.backend.backend()} backend the Augmenter draws its random "
                "parameters on the host, so it runs eagerly, not inside a compiled function or "
                "model: augment in the input pipeline (keras_latent.data's builders do)."
            )
        if flips is not None:
            flips = keras.ops.convert_to_numpy(flips)
        params = self.draw_parameters(images.shape[0], tuple(images.shape[1:]), self._rng(seed), flips)
        return self.apply(images, params)

    def tf_augmentation(self):
        """This Augmenter as TensorFlow ops (``augment_tf.TFAugmentation``), for tf.data on any
        backend; built on first use (call it eagerly, before a tf.data map traces it)."""
        if self._tf_augmentation is None:
            from keras_latent.data.augment_tf import TFAugmentation  # TensorFlow: only here

            self._tf_augmentation = TFAugmentation(self)
        return self._tf_augmentation

    def _rng(self, seed):
        """The host generator of a call: from ``seed`` (mixed with the layer's), else the layer's."""
        if seed is None:
            return self._host_rng
        entropy = [int(v) % 2**64 for v in np.ravel(keras.ops.convert_to_numpy(seed))]
        return np.random.default_rng(entropy + ([] if self.seed is None else [self.seed % 2**64]))

    def draw_parameters(self, batch_size, image_shape, rng, flips=None):
        """Every per-image random parameter, drawn on the host with NumPy ``rng`` (a
        ``np.random.Generator``), with the distributions of the TensorFlow path: a dict of small
        arrays for ``apply``. ``flips`` (one bool per image) replaces the drawn flips."""
        height, width = image_shape[0], image_shape[1]

        def uniform(low=0.0, high=1.0):
            return rng.uniform(low, high, batch_size).astype(np.float32)

        params = {}
        if self.crop_scale is not None:
            params["crop_box"] = _draw_crop_boxes(
                rng, batch_size, height / width, self.crop_scale, self.crop_ratio or (1.0, 1.0))
        if self.translate:
            params["translate"] = rng.integers(0, 2 * self.translate + 1, (batch_size, 2), dtype=np.int32)
        if self.horizontal_flip:
            params["flip"] = uniform() < 0.5
            if flips is not None:
                params["flip"] = np.asarray(flips, bool).reshape(batch_size)
        if self._jitters:
            params["jitter"] = uniform() < self.jitter_probability
            if self.brightness:
                params["brightness"] = uniform(-self.brightness, self.brightness)
            if self.contrast:
                params["contrast"] = uniform(1 - self.contrast, 1 + self.contrast)
            if self.saturation:
                params["saturation"] = uniform(1 - self.saturation, 1 + self.saturation)
            if self.hue:
                params["hue"] = uniform(-self.hue, self.hue)
        if self.grayscale_probability:
            params["grayscale"] = uniform() < self.grayscale_probability
        if self.blur_probability:
            params["blur"] = uniform() < self.blur_probability
            params["blur_sigma"] = uniform(*self.blur_sigma)
        if self.mask_ratio:
            cells = (batch_size, -(-height // self.mask_patch), -(-width // self.mask_patch))
            params["keep"] = rng.random(cells) >= self.mask_ratio
        if self.noise_std:
            params["noise_seed"] = rng.integers(0, 2**31 - 1, 2, dtype=np.int32)  # the noise itself: on the device
        return params

    def apply(self, images, params):
        """The pixel maths for ``draw_parameters``' ``params``, in keras.ops (any backend,
        compilable: ``params`` are tensors of fixed shapes, their keys fixed by the settings)."""
        ops = keras.ops
        images = ops.convert_to_tensor(images, "float32")
        params = {name: ops.convert_to_tensor(value) for name, value in params.items()}
        if "crop_box" in params:
            images = _crop(images, params["crop_box"])
        if "translate" in params:
            images = _translate(images, params["translate"], self.translate)
        if "flip" in params:
            images = self._flip.transform_images(images, {"flips": _per_image(params["flip"])})
        if "jitter" in params:
            jittered = images
            if "brightness" in params:
                jittered = self._brightness.transform_images(
                    jittered, {"rgb_delta": _per_image(params["brightness"])})
            if "contrast" in params:
                jittered = self._contrast.transform_images(
                    jittered, {"contrast_factor": _per_image(params["contrast"])})
            if "saturation" in params:
                jittered = _adjust_saturation(jittered, _per_image(params["saturation"]))
            if "hue" in params:
                jittered = self._hue.transform_images(jittered, {"factor": params["hue"]})
            images = ops.where(_per_image(params["jitter"]), jittered, images)
        if "grayscale" in params:
            images = self._grayscale.transform_images(images, _per_image(params["grayscale"]))
        if "blur" in params:
            blurred = _gaussian_blur(images, params["blur_sigma"], self.blur_kernel_size)
            images = ops.where(_per_image(params["blur"]), blurred, images)
        if "noise_seed" in params:
            images = images + self.noise_std * self._normal(images.shape, params["noise_seed"])
        if "keep" in params:
            images = ops.where(_upsampled(params["keep"], self.mask_patch, images.shape), images, 0.5)
        return ops.clip(images, 0.0, 1.0)

    def compiled_apply(self):
        """``apply`` compiled for this backend (XLA on TensorFlow and JAX), once per Augmenter;
        as it is with ``jit_compile=False``."""
        if self._compiled_apply is None:
            from keras_latent.backend import compile_function

            self._compiled_apply = compile_function(self.apply) if self.jit_compile else self.apply
        return self._compiled_apply

    def _normal(self, shape, seed):
        """Standard normal noise drawn on the device from ``seed``: keras.random takes a
        SeedGenerator, so this layer's is read with its state set to ``seed`` in a
        StatelessScope (as Keras' trainers thread seeds through compiled steps; the layer's
        own state is left as it was)."""
        state = self.seed_generator.state
        seed = keras.ops.cast(seed, state.dtype)
        with keras.StatelessScope(state_mapping=[(state, seed)]):
            return keras.random.normal(shape, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({name: getattr(self, name) for name in DEFAULT_SETTINGS})
        config.update({"seed": self.seed, "jit_compile": self.jit_compile})
        return config


def _pixel_layers():
    """Keras layers used only for their (deterministic) ``transform_images``: flip, brightness,
    contrast, hue, grayscale."""
    value_range = (0.0, 1.0)
    return (
        keras.layers.RandomFlip("horizontal", dtype="float32"),
        keras.layers.RandomBrightness(0.0, value_range=value_range, dtype="float32"),
        keras.layers.RandomContrast(0.0, value_range=value_range, dtype="float32"),
        keras.layers.RandomHue(0.0, value_range=value_range, dtype="float32"),
        keras.layers.RandomGrayscale(0.0, dtype="float32"),
    )


def _traced(images):
    """Whether ``images`` is a symbolic value of a function being compiled (JAX tracing)."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(images, jax.core.Tracer)


def _draw_crop_boxes(rng, batch_size, aspect, scale, ratio, attempts=10):
    """``(B, 4)`` normalised ``(y0, x0, y1, x1)`` random-resized-crop boxes, as the TensorFlow
    path draws them: up to ``attempts`` (area, log-ratio) draws per image, the first that fits
    wins, else the whole image (torchvision's logic). ``aspect`` is H / W."""
    area = rng.uniform(scale[0], scale[1], (batch_size, attempts))
    ratio_wh = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), (batch_size, attempts)))
    # Box sides as fractions of the image side: w*h = area * H*W and w/h = ratio (in pixels).
    crop_w = np.sqrt(area * ratio_wh * aspect)
    crop_h = np.sqrt(area / ratio_wh / aspect)
    fits = (crop_w <= 1.0) & (crop_h <= 1.0)
    first, any_fits, rows = fits.argmax(axis=1), fits.any(axis=1), np.arange(batch_size)
    crop_w = np.where(any_fits, crop_w[rows, first], 1.0)
    crop_h = np.where(any_fits, crop_h[rows, first], 1.0)
    offsets = rng.random((batch_size, 2))
    y0, x0 = offsets[:, 0] * (1.0 - crop_h), offsets[:, 1] * (1.0 - crop_w)
    return np.stack([y0, x0, y0 + crop_h, x0 + crop_w], axis=1).astype(np.float32)


def _per_image(values):
    """One value per image as a ``(B, 1, 1, 1)`` tensor that broadcasts over its pixels."""
    return keras.ops.reshape(values, (-1, 1, 1, 1))


def _crop(images, boxes):
    """Crop each image to its box and resize it back to its size, bilinear, with
    ``tf.image.crop_and_resize``'s arithmetic: output row ``i`` samples input row
    ``y0 * (H - 1) + i * (y1 - y0)``, likewise columns; columns are interpolated first.

    Separable gathers, not ``keras.ops.image.affine_transform``: TensorFlow's op for it has no
    XLA kernel (so it cannot be compiled there), and the JAX one computes the coordinates with
    a matrix product, which GPUs may round to TF32.
    """
    height, width = images.shape[1], images.shape[2]
    images = _interpolated(images, _source_coordinates(boxes[:, 1], boxes[:, 3], width), axis=2)
    return _interpolated(images, _source_coordinates(boxes[:, 0], boxes[:, 2], height), axis=1)


def _source_coordinates(start, end, size):
    """``(B, size)`` input coordinates of the output pixels for boxes ``[start, end]`` (0..1)."""
    ops = keras.ops
    scale = (end - start) * (size - 1) / max(size - 1, 1)
    return (start * (size - 1))[:, None] + ops.arange(size, dtype="float32")[None, :] * scale[:, None]


def _interpolated(images, coordinates, axis):
    """Linear interpolation of ``images`` at per-image ``coordinates`` along ``axis`` (1 or 2)."""
    ops = keras.ops
    low = ops.floor(coordinates)
    weight = coordinates - low
    last = images.shape[axis] - 1
    expand = (slice(None), slice(None), None, None) if axis == 1 else (slice(None), None, slice(None), None)
    shape = list(images.shape)
    shape[axis] = coordinates.shape[1]

    def take(index):
        index = ops.broadcast_to(ops.clip(ops.cast(index, "int32"), 0, last)[expand], shape)
        return ops.take_along_axis(images, index, axis=axis)

    first = take(low)
    return first + (take(ops.ceil(coordinates)) - first) * weight[expand]


def _translate(images, offsets, pixels):
    """Shift each image by its own offsets into the reflect-padded image (rows, then columns):
    exact pixels, no resampling. numpy's "reflect" pad is tf.pad's REFLECT."""
    ops = keras.ops
    batch, height, width, channels = images.shape
    padded = ops.pad(images, [[0, 0], [pixels, pixels], [pixels, pixels], [0, 0]], mode="reflect")
    offsets = ops.cast(offsets, "int32")
    rows = offsets[:, :1] + ops.arange(height, dtype="int32")[None, :]  # (B, H)
    rows = ops.broadcast_to(rows[:, :, None, None], (batch, height, width + 2 * pixels, channels))
    images = ops.take_along_axis(padded, rows, axis=1)
    cols = offsets[:, 1:] + ops.arange(width, dtype="int32")[None, :]  # (B, W)
    cols = ops.broadcast_to(cols[:, None, :, None], (batch, height, width, channels))
    return ops.take_along_axis(images, cols, axis=2)


def _adjust_saturation(images, factor):
    """Blend with the luma image (ITU-R 601, as torchvision): 0 = gray, 1 = unchanged."""
    red, green, blue = _LUMA  # a weighted sum, not a matmul: exact float32 on every device
    gray = images[..., :1] * red + images[..., 1:2] * green + images[..., 2:] * blue
    return keras.ops.clip(gray + (images - gray) * factor, 0.0, 1.0)


def _gaussian_blur(images, sigma, kernel_size):
    """Separable Gaussian blur with one ``sigma`` per image, reflect-padded (as SimCLR's).

    Per-image kernels run as ONE depthwise convolution: the batch is folded into the
    channel axis, so each (image, channel) pair gets its own kernel.
    """
    ops = keras.ops
    radius = kernel_size // 2
    if radius == 0:
        return images
    batch, height, width, channels = images.shape
    taps = ops.arange(-radius, radius + 1, dtype="float32")
    weights = ops.exp(-ops.square(taps)[None, :] / (2.0 * ops.square(sigma)[:, None]))
    weights = weights / ops.sum(weights, axis=1, keepdims=True)  # (B, k)
    weights = ops.transpose(ops.repeat(weights, channels, axis=0))  # (k, B*C), image-major
    padded = ops.pad(images, [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="reflect")
    folded = ops.transpose(padded, [1, 2, 0, 3])  # (H', W', B, C)
    folded = ops.reshape(folded, (1, height + 2 * radius, width + 2 * radius, batch * channels))
    folded = ops.depthwise_conv(folded, weights[None, :, :, None], strides=1, padding="valid")
    folded = ops.depthwise_conv(folded, weights[:, None, :, None], strides=1, padding="valid")
    return ops.transpose(ops.reshape(folded, (height, width, batch, channels)), [2, 0, 1, 3])


def _upsampled(cells, patch, shape):
    """Per-patch keep bits ``(B, h, w)`` -> per-pixel ``(B, H, W, 1)``."""
    ops = keras.ops
    keep = ops.repeat(ops.repeat(cells, patch, axis=1), patch, axis=2)
    return keep[:, : shape[1], : shape[2], None]


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
