"""Augmentation presets and the Augmenter layer: ranges, per-image randomness, seeding, references."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_latent.data.augment import (
    AUGMENTATION_PRESETS,
    DEFAULT_SETTINGS,
    Augmenter,
    build_augmentation,
    mirrors_images,
    resolve_augmentation,
)
from keras_latent.data.augment_tf import _gaussian_blur, _random_resized_crop

SEED = tf.constant([3, 4], tf.int64)


def batch(shape=(16, 32, 32, 3), seed=0):
    return tf.constant(np.random.default_rng(seed).random(shape, dtype=np.float32))


def test_presets_are_data_with_known_settings():
    for family in AUGMENTATION_PRESETS.values():
        assert set(family) == {"simclr", "light", "shift_flip", "none"}
        for settings in family.values():
            assert set(settings) <= set(DEFAULT_SETTINGS)
    simclr = AUGMENTATION_PRESETS["rgb"]["simclr"]
    assert simclr["crop_scale"] == (0.08, 1.0) and simclr["grayscale_probability"] == 0.2


def test_only_datasets_of_mirror_symmetric_classes_are_mirrored():
    """Flip augmentation and flip TTA follow this: a mirrored digit is not the same digit."""
    assert mirrors_images("cifar10") and mirrors_images("rgb")
    assert not any(mirrors_images(name) for name in ("mnist", "fashion_mnist", "gray", "other"))


@pytest.mark.parametrize("dataset, shape", [("cifar10", (8, 32, 32, 3)), ("mnist", (8, 28, 28, 1))])
@pytest.mark.parametrize("preset", ["simclr", "light", "none"])
def test_every_preset_keeps_shape_dtype_and_range(dataset, shape, preset):
    x = batch(shape)
    y = build_augmentation(dataset, preset)(x, seed=SEED)
    assert y.shape == shape and y.dtype == tf.float32
    assert float(tf.reduce_min(y)) >= 0.0 and float(tf.reduce_max(y)) <= 1.0
    if preset == "none" or (dataset == "mnist" and preset == "light"):
        np.testing.assert_array_equal(y, x)


def test_same_seed_same_batch_other_seed_other_batch_and_per_image_randomness():
    aug = build_augmentation("cifar10", "simclr")
    x = tf.repeat(batch((1, 32, 32, 3)), 8, axis=0)  # 8 copies of one image
    a, b, c = aug(x, seed=SEED), aug(x, seed=SEED), aug(x, seed=SEED + 1)
    np.testing.assert_array_equal(a, b)
    assert float(tf.reduce_mean(tf.abs(a - c))) > 0.01
    # Copies of the same image come out different: randomness is per image, not per batch.
    assert float(tf.reduce_min(tf.reduce_mean(tf.abs(a[1:] - a[:1]), axis=[1, 2, 3]))) > 1e-3


def test_augmenter_seed_changes_the_stream():
    x = batch((4, 32, 32, 3))
    a = build_augmentation("cifar10", "simclr", seed=1)(x, seed=SEED)
    b = build_augmentation("cifar10", "simclr", seed=2)(x, seed=SEED)
    assert not np.allclose(a, b)


def test_xla_and_plain_tensorflow_agree():
    x = batch((8, 32, 32, 3))
    fast = build_augmentation("cifar10", "simclr", blur_probability=0.5)
    plain = build_augmentation("cifar10", "simclr", blur_probability=0.5, jit_compile=False)
    np.testing.assert_allclose(fast(x, seed=SEED), plain(x, seed=SEED), atol=1e-5)


def test_strength_scales_colour_jitter_and_overrides_win():
    aug = build_augmentation("cifar10", "simclr", strength=0.5, hue=0.05, grayscale_probability=0.0)
    assert aug.brightness == pytest.approx(0.2) and aug.saturation == pytest.approx(0.2)
    assert aug.hue == 0.05 and aug.grayscale_probability == 0.0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="Unknown dataset or family 'svhn'"):
        build_augmentation("svhn", "simclr")
    with pytest.raises(ValueError, match="Unknown augmentation preset 'strong'"):
        build_augmentation("cifar10", "strong")
    with pytest.raises(ValueError, match=r"Unknown augmentation settings \['rotate'\]"):
        build_augmentation("cifar10", "simclr", rotate=10)
    with pytest.raises(ValueError, match="crop_scale"):
        build_augmentation("cifar10", "simclr", crop_scale=(0.9, 0.1))
    with pytest.raises(ValueError, match="need RGB images"):
        build_augmentation("mnist", "simclr", saturation=0.4)(batch((2, 28, 28, 1)), seed=SEED)
    with pytest.raises(ValueError, match="horizontal_flip must be True, False or 'alternate'"):
        build_augmentation("cifar10", "none", horizontal_flip="sometimes")


def test_training_false_is_identity_and_config_round_trips():
    aug = build_augmentation("cifar10", "simclr", seed=7)
    x = batch((4, 32, 32, 3))
    np.testing.assert_array_equal(aug(x, training=False), x)
    clone = keras.layers.deserialize(keras.layers.serialize(aug))
    assert isinstance(clone, Augmenter)
    np.testing.assert_array_equal(clone(x, seed=SEED), aug(x, seed=SEED))
    assert aug(x).shape == x.shape  # without a seed: its own SeedGenerator


def test_random_resized_crop_boxes_respect_scale():
    # A horizontal ramp: after cropping + resizing, each row spans the crop's width fraction.
    width = 64
    ramp = tf.tile(tf.linspace(0.0, 1.0, width)[None, None, :, None], [256, width, 1, 1])
    out = _random_resized_crop(ramp, SEED, scale=(0.25, 0.5), ratio=(1.0, 1.0))
    spans = (out[:, 0, -1, 0] - out[:, 0, 0, 0]).numpy()  # = crop width fraction
    assert spans.min() >= math.sqrt(0.25) - 1e-3 and spans.max() <= math.sqrt(0.5) + 1e-3
    assert spans.std() > 0.01  # different crops per image
    full = _random_resized_crop(ramp, SEED, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(full, ramp, atol=1e-5)  # the whole image is the identity


def test_gaussian_blur_matches_numpy_reference():
    x = np.random.default_rng(0).random((3, 7, 9, 2)).astype(np.float32)
    sigma = np.array([0.5, 1.0, 2.0], np.float32)
    out = _gaussian_blur(tf.constant(x), tf.constant(sigma), 3).numpy()
    for b in range(3):
        w = np.exp(-np.arange(-1, 2) ** 2 / (2 * sigma[b] ** 2))
        kernel = np.outer(w, w) / w.sum() ** 2
        padded = np.pad(x[b], ((1, 1), (1, 1), (0, 0)), mode="reflect")
        expected = sum(kernel[i, j] * padded[i : i + 7, j : j + 9] for i in range(3) for j in range(3))
        np.testing.assert_allclose(out[b], expected, atol=1e-6)


def test_colour_ops_match_definitions():
    x = batch((64, 8, 8, 3))
    gray = build_augmentation("cifar10", "none", grayscale_probability=1.0)(x, seed=SEED).numpy()
    np.testing.assert_allclose(gray[..., 0], gray[..., 2], atol=1e-6)  # all channels equal
    flipped = build_augmentation("cifar10", "none", horizontal_flip=True)(x, seed=SEED).numpy()
    is_flipped = [np.allclose(f, x[i].numpy()[:, ::-1]) for i, f in enumerate(flipped)]
    is_same = [np.allclose(f, x[i].numpy()) for i, f in enumerate(flipped)]
    assert all(a or b for a, b in zip(is_flipped, is_same)) and 10 < sum(is_flipped) < 54


def test_resolve_augmentation_takes_a_name_a_dict_a_callable_or_none():
    x = batch((8, 28, 28, 1))
    assert resolve_augmentation("mnist", None) is None
    assert resolve_augmentation("mnist", "light").is_identity  # digits: no light augmentation
    shifts = resolve_augmentation("mnist", {"crop_scale": (0.8, 1.0)}, seed=0)
    assert not shifts.is_identity and shifts.crop_scale == (0.8, 1.0)
    assert float(tf.reduce_mean(tf.abs(shifts(x, seed=SEED) - x))) > 1e-3
    assert resolve_augmentation("mnist", shifts) is shifts
    with pytest.raises(TypeError, match="preset name, a dict of settings or a callable"):
        resolve_augmentation("mnist", 0.5)
    with pytest.raises(ValueError, match="Unknown augmentation settings"):
        resolve_augmentation("mnist", {"rotation": 10})


def test_translate_shifts_each_image_by_whole_pixels_with_reflection():
    from keras_latent.data.augment import Augmenter

    rng = np.random.default_rng(0)
    images = rng.random((16, 8, 8, 3)).astype("float32")
    shifted = np.asarray(Augmenter(translate=2, seed=0)(images, seed=tf.constant([1, 2])))
    padded = np.pad(images, [(0, 0), (2, 2), (2, 2), (0, 0)], mode="reflect")
    offsets = set()
    for image, out in zip(padded, shifted):
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(image[dy:dy + 8, dx:dx + 8], out)]
        assert matches, "every output is an exact shifted window of the padded image"
        offsets.add(matches[0])
    assert len(offsets) > 3  # shifts differ between images
    assert Augmenter(translate=0).is_identity and not Augmenter(translate=1).is_identity


def test_masking_greys_whole_patches_at_the_asked_rate_and_keeps_the_rest():
    images = batch((64, 32, 32, 3))
    masked = np.asarray(Augmenter(mask_ratio=0.4, mask_patch=4, seed=0)(images, seed=SEED))
    grey = np.all(masked == 0.5, axis=-1)  # (64, 32, 32)
    patches = grey.reshape(64, 8, 4, 8, 4).transpose(0, 1, 3, 2, 4).reshape(64, 8, 8, 16)
    assert np.all(patches.all(-1) == patches.any(-1)), "a patch is masked whole or not at all"
    assert 0.35 < patches.all(-1).mean() < 0.45
    assert np.array_equal(masked[~grey], np.asarray(images)[~grey])
    assert 1 < len({int(g.sum()) for g in grey})  # each image draws its own mask
    assert Augmenter(mask_ratio=0.0).is_identity and not Augmenter(mask_ratio=0.1).is_identity


def test_noise_has_the_asked_spread_and_mask_patch_need_not_divide_the_image():
    images = tf.fill((32, 30, 30, 3), 0.5)
    noisy = np.asarray(Augmenter(noise_std=0.05, seed=0)(images, seed=SEED))
    assert abs(float(np.std(noisy - 0.5)) - 0.05) < 0.003
    masked = Augmenter(mask_ratio=0.5, mask_patch=4, seed=0)(batch((2, 30, 30, 3)), seed=SEED)
    assert masked.shape == (2, 30, 30, 3)
    with pytest.raises(ValueError, match="mask_patch"):
        Augmenter(mask_patch=0)
    with pytest.raises(ValueError, match="mask_ratio"):
        Augmenter(mask_ratio=1.5)
