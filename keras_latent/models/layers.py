"""The few layers and initialisers Keras lacks that fast CIFAR-10 networks rely on.

They follow airbench (Keller Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024):
a frozen patch-whitening first layer, identity ("dirac") initialisation of convolutions, and
batch-norm biases that learn faster than the other weights. Each saves and loads with Keras.
"""

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="keras_latent")
class PatchWhitening(keras.layers.Layer):
    """A ``patch_size`` x ``patch_size`` valid convolution whose filters whiten image patches.

    ``adapt(images)`` sets the filters, once, from the eigenvectors of the training images'
    patch covariance, each scaled by 1/sqrt(eigenvalue + eps) (eigenvalues of standardised
    pixels), plus their negatives (so a
    following GELU/ReLU keeps both signs): ``2 * patch_size**2 * channels`` output channels
    with unit variance and no correlation on the data it saw. The filters are not trainable;
    the bias (which starts at minus the filtered mean patch) is. Like ``Normalization``, the
    statistics travel in the saved model.
    """

    def __init__(self, patch_size=2, eps=5e-4, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = int(patch_size)
        self.eps = float(eps)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        dims = self.patch_size * self.patch_size * channels
        self.kernel = self.add_weight(
            name="kernel", shape=(self.patch_size, self.patch_size, channels, 2 * dims),
            initializer="glorot_uniform", trainable=False,
        )
        self.bias = self.add_weight(name="bias", shape=(2 * dims,), initializer="zeros")

    def adapt(self, images, max_images=5000):
        """Fit the filters to ``images`` ((N, H, W, C), uint8 or float in [0, 1])."""
        images = np.asarray(images[:max_images])
        images = images.astype("float64") / (255.0 if images.dtype == np.uint8 else 1.0)
        if not self.built:
            self.build(images.shape)
        p = self.patch_size
        patches = np.lib.stride_tricks.sliding_window_view(images, (p, p), axis=(1, 2))
        # (N, H', W', C, p, p) -> rows ordered (p, p, C) like a Keras conv kernel.
        patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, p * p * images.shape[-1])
        mean = patches.mean(axis=0)
        # eps is relative to standardised pixels (as airbench's, whose inputs are normalised).
        scale = images.std() or 1.0
        covariance = np.cov((patches - mean) / scale, rowvar=False)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        order = np.argsort(eigenvalues)[::-1]
        filters = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + self.eps) / scale
        filters = np.concatenate([filters, -filters], axis=1)
        self.kernel.assign(filters.reshape(self.kernel.shape).astype("float32"))
        self.bias.assign((-mean @ filters).astype("float32"))

    def call(self, images):
        kernel = ops.cast(self.kernel, self.compute_dtype)
        return ops.conv(images, kernel, padding="valid") + ops.cast(self.bias, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        height, width = input_shape[1], input_shape[2]
        shrink = self.patch_size - 1
        return (input_shape[0], None if height is None else height - shrink,
                None if width is None else width - shrink, 2 * self.patch_size ** 2 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "eps": self.eps}


@keras.saving.register_keras_serializable(package="keras_latent")
class ScaledBias(keras.layers.Layer):
    """Adds ``scale * b`` per channel: the bias learns ``scale**2`` times faster under SGD.

    Keras optimisers have one learning rate for all weights; this reparametrisation gives
    batch-norm biases the higher rate airbench uses (64x = scale 8; its ablations: 18 -> 13.5
    epochs to 94 %) while weight decay still shrinks them at the common relative rate.
    """

    def __init__(self, scale=8.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def build(self, input_shape):
        self.bias = self.add_weight(name="bias", shape=(int(input_shape[-1]),), initializer="zeros")

    def call(self, x):
        return x + ops.cast(self.bias * self.scale, x.dtype)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="keras_latent")
class PartialDirac(keras.initializers.Initializer):
    """Conv kernel whose first ``min(in, out)`` filters are identities, the rest uniform in
    +-1/sqrt(fan_in) (PyTorch's default, as airbench: smaller weights before a BN mean a
    larger effective learning rate).

    A network of such convolutions starts close to passing its input through, which lets a
    short schedule train it (airbench's ablations: 21 -> 18 epochs to 94 %).
    """

    def __init__(self, seed=None):
        self.seed = seed
        self._base = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed)

    def __call__(self, shape, dtype=None):
        kernel = self._base(shape, dtype=dtype)
        kh, kw, cin, cout = shape
        n = min(cin, cout)
        identity = np.zeros((kh, kw, cin, n), dtype="float32")
        identity[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        identity = ops.convert_to_tensor(identity, dtype=kernel.dtype)
        return ops.concatenate([identity, kernel[..., n:]], axis=-1)

    def get_config(self):
        return {"seed": self.seed}


def adapt_whitening(model, images) -> int:
    """``adapt`` every ``PatchWhitening`` layer inside ``model`` to ``images``; returns how many.

    The paradigms call this once on the training images before the first step, so a model
    built from a preset with a whitening stem needs no extra step from the user.
    """
    found = [layer for layer in _all_layers(model) if isinstance(layer, PatchWhitening)]
    for layer in found:
        layer.adapt(images)
    return len(found)


def _all_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _all_layers(layer)
