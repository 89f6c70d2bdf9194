"""Shared by test_arrays.py and its JAX subprocesses: images, and the TensorFlow path's ops run
on parameters drawn by ``Augmenter.draw_parameters`` (so both paths see the same numbers)."""

import os
from pathlib import Path

import numpy as np

# One Augmenter setting per group of ops, then all of them chained.
OP_GROUPS = {
    "crop": {"crop_scale": (0.08, 1.0)},
    "translate": {"translate": 3},
    "flip_jitter": {"horizontal_flip": True, "brightness": 0.4, "contrast": 0.4, "saturation": 0.4},
    "hue": {"hue": 0.1, "jitter_probability": 1.0},
    "grayscale": {"grayscale_probability": 0.5},
    "blur": {"blur_probability": 0.7, "blur_kernel_size": 5},
    "mask": {"mask_ratio": 0.3, "mask_patch": 5},
    "everything": {"crop_scale": (0.08, 1.0), "translate": 2, "horizontal_flip": True,
                   "brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.1,
                   "grayscale_probability": 0.2, "blur_probability": 0.5, "mask_ratio": 0.2},
}
# Max |difference| allowed: float32 rounding (measured on CPU: <= 2e-6 on TensorFlow and JAX).
TOLERANCE = 1e-5


def cifar_images(count=16):
    """``count`` CIFAR-10 test images (uint8) from the offline data folder, else smooth
    synthetic ones (upsampled noise, so bilinear crops see image-like gradients)."""
    folder = os.environ.get("KERAS_LATENT_DATA_DIR")
    path = Path(folder, "cifar10.npz") if folder else None
    if path is not None and path.is_file():
        with np.load(path) as arrays:
            return np.asarray(arrays["x_test"][:count])
    coarse = np.random.default_rng(0).integers(0, 256, (count, 8, 8, 3))
    return np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype(np.uint8)


def group_parameters(augmenter, images, seed=0):
    """One draw of ``augmenter``'s parameters for ``images`` (float32 batch)."""
    return augmenter.draw_parameters(len(images), images.shape[1:], np.random.default_rng(seed))


def tensorflow_apply(augmenter, images, params):
    """The TensorFlow path (``augment_tf``) on host-drawn ``params``: crop_and_resize, the
    translate gather, then the XLA pixel ops with ``params`` laid out as its own draws."""
    import tensorflow as tf

    from keras_latent.data import augment_tf

    x = tf.constant(images)
    batch, height, width = images.shape[:3]
    if "crop_box" in params:
        x = tf.image.crop_and_resize(x, params["crop_box"], tf.range(batch), [height, width])
    if "translate" in params:
        x = augment_tf._translate(x, tf.constant(params["translate"]), augmenter.translate)
    drawn = {}
    for name, value in params.items():
        if name in ("crop_box", "translate", "noise_seed"):
            continue
        if name == "keep":
            patch = augmenter.mask_patch
            value = np.repeat(np.repeat(value, patch, axis=1), patch, axis=2)[:, :height, :width, None]
        elif name not in ("hue", "blur_sigma"):
            value = value.reshape(-1, 1, 1, 1)
        drawn[name] = tf.constant(value)
    tf_augmentation = augmenter.tf_augmentation()
    return tf.function(tf_augmentation.pixel_ops, jit_compile=True)(x, drawn).numpy()


def max_differences(backend_apply):
    """``{group: max |apply - TensorFlow path|}`` over OP_GROUPS, ``backend_apply(augmenter,
    images, params)`` being the backend-neutral ``apply`` as the caller runs it."""
    from keras_latent.data import Augmenter

    images = cifar_images().astype(np.float32) / 255.0
    differences = {}
    for name, settings in OP_GROUPS.items():
        augmenter = Augmenter(**settings)
        params = group_parameters(augmenter, images)
        ours = np.asarray(backend_apply(augmenter, images, params))
        differences[name] = float(np.max(np.abs(ours - tensorflow_apply(augmenter, images, params))))
    return differences


def tf_data_batches():
    """A few tf.data batches through every op: contrastive views and two epochs of alternating
    flips (compared between the TensorFlow and JAX backends)."""
    from keras_latent.data import build_augmentation, pipelines

    images = cifar_images(48)
    augment = build_augmentation("cifar10", "simclr", blur_probability=0.5, translate=2,
                                 noise_std=0.05, mask_ratio=0.2, seed=5)
    flips = build_augmentation("cifar10", "shift_flip", horizontal_flip="alternate")
    views = [t.numpy() for batch in pipelines.contrastive_dataset(images, 16, augment=augment, seed=3)
             for t in batch]
    supervised = pipelines.supervised_dataset(images, np.arange(48), 16, augment=flips, seed=2)
    return views + [x.numpy() for _ in range(2) for x, _ in supervised]
