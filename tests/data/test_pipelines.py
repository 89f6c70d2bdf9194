"""tf.data builders: element specs, ranges, seeding, views, and input validation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_latent.data import (
    build_augmentation,
    contrastive_dataset,
    encoding_dataset,
    prediction_dataset,
    reconstruction_dataset,
    supervised_dataset,
)


def as_numpy(dataset):
    return [tuple(np.asarray(t) for t in element) if isinstance(element, tuple) else np.asarray(element)
            for element in dataset]


def test_reconstruction_yields_float_pairs_in_unit_range(images):
    batches = as_numpy(reconstruction_dataset(images, 16, shuffle=False))
    assert [x.shape[0] for x, _ in batches] == [16, 16, 8]
    x, target = batches[0]
    assert x.dtype == np.float32 and x.shape == (16, 32, 32, 3)
    np.testing.assert_allclose(x, images[:16] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(x, target)


def test_reconstruction_with_augment_keeps_the_clean_target(images, augment):
    x, target = next(iter(reconstruction_dataset(images, 8, augment=augment, shuffle=False)))
    np.testing.assert_allclose(target, images[:8] / 255.0, atol=1e-6)
    assert not np.allclose(x, target)


def test_supervised_pairs_images_with_their_labels(images, labels):
    seen = []
    for x, y in supervised_dataset(images, labels, 16, seed=1):
        assert x.dtype == tf.float32 and y.dtype == tf.int64
        for image, label in zip(x.numpy(), y.numpy()):
            index = np.flatnonzero((images.reshape(40, -1) == np.round(image * 255).reshape(1, -1)).all(1))
            assert labels[index[0]] == label
            seen.append(index[0])
    assert sorted(seen) == list(range(40)) and seen != list(range(40))  # all of them, shuffled


def test_shuffle_is_seeded_and_reshuffles_each_epoch(images, labels):
    order = lambda ds: np.concatenate([y.numpy() for _, y in ds])  # noqa: E731
    a = supervised_dataset(images, np.arange(40), 8, seed=5)
    epoch_1, epoch_2 = order(a), order(a)
    np.testing.assert_array_equal(epoch_1, order(supervised_dataset(images, np.arange(40), 8, seed=5)))
    assert not np.array_equal(epoch_1, epoch_2)
    assert not np.array_equal(epoch_1, order(supervised_dataset(images, np.arange(40), 8, seed=6)))


def test_alternating_flip_mirrors_each_image_every_other_epoch(images, labels):
    """airbench's flip: random in the first epoch, then the opposite of the image's last visit."""
    augment = build_augmentation("cifar10", "none", horizontal_flip="alternate")
    dataset = supervised_dataset(images, labels, 16, augment=augment, seed=3)
    flipped = {}
    # Labels repeat (40 images, 10 classes), so images are identified by their pixels.
    originals = images.astype(np.float32) / 255.0
    for _ in range(4):
        for x, _ in as_numpy(dataset):
            for image in x:
                match = np.flatnonzero(np.all(np.isclose(originals, image), axis=(1, 2, 3)))
                mirrored = np.flatnonzero(np.all(np.isclose(originals[:, :, ::-1], image), axis=(1, 2, 3)))
                assert len(match) + len(mirrored) == 1
                index, was_flipped = (match[0], False) if len(match) else (mirrored[0], True)
                flipped.setdefault(index, []).append(was_flipped)
    assert sorted(flipped) == list(range(40))
    for visits in flipped.values():
        assert visits == [visits[0], not visits[0]] * 2
    first_epoch = [visits[0] for visits in flipped.values()]
    assert 0 < sum(first_epoch) < 40  # the first epoch's flips are random, not all alike


def test_contrastive_views_differ_and_seeds_reproduce(images, augment):
    dataset = contrastive_dataset(images, 16, augment=augment, seed=3)
    batches = as_numpy(dataset)
    assert len(batches) == 2  # drop_remainder: 40 // 16
    view_1, view_2 = batches[0]
    assert view_1.shape == view_2.shape == (16, 32, 32, 3) and view_1.dtype == np.float32
    assert 0.0 <= view_1.min() and view_1.max() <= 1.0
    assert np.abs(view_1 - view_2).mean() > 0.01
    again = as_numpy(contrastive_dataset(images, 16, augment=augment, seed=3))
    for (a1, a2), (b1, b2) in zip(batches, again):
        np.testing.assert_array_equal(a1, b1)
        np.testing.assert_array_equal(a2, b2)
    other = as_numpy(contrastive_dataset(images, 16, augment=augment, seed=4))
    assert not np.allclose(batches[0][0], other[0][0])


def test_contrastive_with_original_adds_the_clean_batch(images, augment):
    view_1, view_2, x = next(iter(contrastive_dataset(images, 8, augment=augment, with_original=True)))
    rows = (images.reshape(40, 1, -1) == np.round(x.numpy() * 255).reshape(1, 8, -1)).all(-1)
    assert rows.any(axis=0).all()  # every clean image is one of the inputs, unchanged
    assert view_1.shape == view_2.shape == x.shape


def test_encoding_keeps_order_and_remainder(images):
    batches = as_numpy(encoding_dataset(images, 16))
    np.testing.assert_allclose(np.concatenate(batches), images / 255.0, atol=1e-6)


@pytest.mark.parametrize("build", [
    lambda x, y, a: reconstruction_dataset(x, 8),
    lambda x, y, a: supervised_dataset(x, y, 8),
    lambda x, y, a: contrastive_dataset(x, 8, augment=a),
    lambda x, y, a: encoding_dataset(x, 8),
    lambda x, y, a: prediction_dataset(x, 8),
], ids=["reconstruction", "supervised", "contrastive", "encoding", "prediction"])
def test_pipelines_shard_by_data_without_the_autotune_thread(images, labels, augment, build):
    # Deleting an autotuned iterator waited for the tuner's thread, up to ~1 min per epoch.
    options = build(images, labels, augment).options()
    assert options.autotune.enabled is False
    assert options.experimental_distribute.auto_shard_policy == tf.data.experimental.AutoShardPolicy.DATA


def test_normalize_applies_to_inputs_only(images):
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    x, target = next(iter(reconstruction_dataset(images, 4, shuffle=False, normalize=(mean, std))))
    np.testing.assert_allclose(x, (images[:4] / 255.0 - mean) / std, atol=1e-5)
    np.testing.assert_allclose(target, images[:4] / 255.0, atol=1e-6)


def test_grayscale_batches(images):
    gray = images[..., :1].copy()
    aug = build_augmentation("mnist", "simclr")
    view_1, _ = next(iter(contrastive_dataset(gray, 8, augment=aug)))
    assert view_1.shape == (8, 32, 32, 1)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda im, lb, au: contrastive_dataset(im, 1, augment=au), "NT-Xent needs at least 2 images per batch"),
        (lambda im, lb, au: contrastive_dataset(im, 64, augment=au), "fewer than batch_size=64"),
        (lambda im, lb, au: contrastive_dataset(im, 8, augment=None), "needs an augmentation"),
        (lambda im, lb, au: reconstruction_dataset(im.astype(np.float32), 8), "uint8"),
        (lambda im, lb, au: reconstruction_dataset(im[..., 0], 8), r"shape \(N, H, W, C\)"),
        (lambda im, lb, au: reconstruction_dataset(im[:0], 8), "at least one image"),
        (lambda im, lb, au: supervised_dataset(im, lb[:5], 8), "one label per image"),
        (lambda im, lb, au: encoding_dataset(im, 0), "positive integer"),
        (lambda im, lb, au: encoding_dataset(im, 8, normalize=((0.5,), (0.0,))), "std must be positive"),
    ],
)
def test_bad_input_is_rejected_clearly(images, labels, augment, call, message):
    with pytest.raises(ValueError, match=message):
        call(images, labels, augment)
