"""The array pipelines (no TensorFlow) against the tf.data ones: the same distributions of random
transforms, the same pixels for the same parameters, the same batch structures; seeding,
alternating flips, and a run under JAX with TensorFlow blocked."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_latent import data
from keras_latent.data import Augmenter, arrays, augment_tf, build_augmentation, pipelines
from tests.data import parity

REPO = Path(__file__).resolve().parents[2]
BUILDERS = {
    "reconstruction": lambda m, x, y, a: m.reconstruction_dataset(x, 16, augment=a, seed=1),
    "supervised": lambda m, x, y, a: m.supervised_dataset(x, y, 16, augment=a, seed=1),
    "contrastive": lambda m, x, y, a: m.contrastive_dataset(x, 16, augment=a, seed=1),
    "contrastive_original": lambda m, x, y, a: m.contrastive_dataset(x, 16, augment=a, with_original=True),
    "encoding": lambda m, x, y, a: m.encoding_dataset(x, 16, normalize=((0.5,), (0.25,))),
    "prediction": lambda m, x, y, a: m.prediction_dataset(x, 16),
}


def epoch(dataset):
    """One epoch of an array pipeline as NumPy, then on to the next epoch (as ``fit`` does)."""
    batches = [tuple(np.asarray(t) for t in dataset[i]) for i in range(len(dataset))]
    dataset.on_epoch_end()
    return batches


# -- the same random transforms ----------------------------------------------------------------


def tensorflow_draws(augmenter, shape, seed=(1, 2)):
    """The TensorFlow path's draws for a batch of ``shape``, in draw_parameters' layout."""
    seeds = tf.random.experimental.stateless_split(tf.constant(seed, tf.int64), num=12, alg="philox")
    tf_augmentation = augmenter.tf_augmentation()
    draws = {name: tf.reshape(v, [shape[0], -1]).numpy() for name, v in tf_augmentation.draw(shape, seeds).items()}
    draws = {name: v[:, 0] if v.shape[1] == 1 else v for name, v in draws.items()}
    if augmenter.crop_scale is not None:
        draws["crop_box"] = augment_tf._crop_boxes(
            shape, seeds[0], augmenter.crop_scale, augmenter.crop_ratio).numpy()
    if augmenter.translate:
        draws["translate"] = augment_tf._translate_offsets(shape, seeds[10], augmenter.translate).numpy()
    return draws


def summary(draws, shape, spreads):
    """Statistics that a wrong range, probability or crop logic would move; parameter values
    in units of ``spreads`` (the TensorFlow draws' range), so a wrong range shows."""
    stats = {}
    for name, value in draws.items():
        if name == "crop_box":
            y0, x0, y1, x1 = value.T.astype(np.float64)
            area = (y1 - y0) * (x1 - x0)
            log_aspect = np.log((x1 - x0) * shape[2] / ((y1 - y0) * shape[1]))
            for q in (0.05, 0.25, 0.5, 0.75, 0.95):
                stats[f"area_q{q}"] = np.quantile(area, q)
                stats[f"log_aspect_q{q}"] = np.quantile(log_aspect, q) / 3
            stats["area_mean"] = area.mean()
            stats["whole_image"] = np.mean(area > 1 - 1e-6)
            stats["centre_y"], stats["centre_x"] = np.mean((y0 + y1) / 2), np.mean((x0 + x1) / 2)
            stats["centre_y_std"] = np.std((y0 + y1) / 2)
        elif name == "translate":
            for offset in range(value.max() + 1):
                stats[f"translate_{offset}"] = np.mean(value == offset)
        elif name in ("noise", "noise_seed"):
            continue
        elif value.dtype == bool:
            stats[f"{name}_rate"] = value.mean()
        else:
            for q in (0.0, 0.1, 0.5, 0.9, 1.0):
                stats[f"{name}_q{q}"] = np.quantile(value, q) / spreads[name]
    return stats


@pytest.mark.parametrize("settings, shape", [
    (dict(parity.OP_GROUPS["everything"], translate=3, mask_patch=4), (20000, 32, 32, 3)),
    # Tall crops of a wide image: most draws do not fit, so the 10 attempts and the whole-image
    # fallback decide the areas and aspects.
    ({"crop_scale": (0.5, 1.0), "crop_ratio": (0.5, 2.0)}, (20000, 24, 48, 1)),
], ids=["simclr_and_more", "crop_attempts"])
def test_both_paths_draw_the_same_distribution_of_transforms(settings, shape):
    augmenter = Augmenter(**settings)
    ours = augmenter.draw_parameters(shape[0], shape[1:], np.random.default_rng(0))
    if "keep" in ours:
        ours["keep"] = ours["keep"].reshape(shape[0], -1)
    theirs = tensorflow_draws(augmenter, shape)
    spreads = {name: float(np.ptp(value)) for name, value in theirs.items() if value.dtype == np.float32}
    expected, got = summary(theirs, shape, spreads), summary(ours, shape, spreads)
    assert set(got) == set(expected)
    # 20,000 draws: a rate's standard error is <= 0.0035, a quantile's about as small.
    off = {name: (round(got[name], 4), round(expected[name], 4))
           for name in expected if abs(got[name] - expected[name]) > 0.02}
    assert not off, f"NumPy vs TensorFlow draws: {off}"
    if augmenter.crop_ratio == (0.5, 2.0):
        assert 0.03 < expected["whole_image"] < 0.5  # the fallback matters in this case


# -- the same pixels for the same parameters -----------------------------------------------------


def test_apply_gives_the_tensorflow_pixels_for_the_same_parameters():
    differences = parity.max_differences(lambda augmenter, images, params: augmenter.apply(images, params))
    assert max(differences.values()) <= parity.TOLERANCE, differences


def test_compiled_apply_matches_apply_and_noise_has_its_spread():
    augmenter = Augmenter(**parity.OP_GROUPS["everything"])
    x = parity.cifar_images().astype(np.float32) / 255.0
    params = parity.group_parameters(augmenter, x)
    np.testing.assert_allclose(augmenter.compiled_apply()(x, params), augmenter.apply(x, params), atol=1e-5)
    # The noise is drawn on the device from the host's seed (XLA's numbers: compiled only).
    noisy = Augmenter(noise_std=0.05).compiled_apply()
    flat = np.full((32, 16, 16, 3), 0.5, np.float32)
    first, again, other = (np.asarray(noisy(flat, {"noise_seed": np.array(s, np.int32)}))
                           for s in ([1, 2], [1, 2], [1, 3]))
    assert abs(float(np.std(first - 0.5)) - 0.05) < 0.003 and abs(float(np.mean(first - 0.5))) < 0.003
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


# -- the array pipelines --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(BUILDERS))
def test_array_batches_have_the_structure_shapes_and_dtypes_of_tf_data(images, labels, augment, kind):
    reference = next(iter(BUILDERS[kind](pipelines, images, labels, augment)))
    reference = reference if isinstance(reference, tuple) else (reference,)  # PyDataset: (x,)
    dataset = BUILDERS[kind](arrays, images, labels, augment)
    batch = dataset[0]
    assert isinstance(batch, tuple) and len(batch) == len(reference)
    for ours, theirs in zip(batch, reference):
        assert tuple(ours.shape) == tuple(theirs.shape)
        assert np.asarray(ours).dtype == theirs.dtype.as_numpy_dtype
    assert len(dataset) == len(list(BUILDERS[kind](pipelines, images, labels, augment)))


def test_array_pipeline_is_seeded_and_changes_every_epoch(images, augment):
    first = arrays.contrastive_dataset(images, 16, augment=augment, seed=3)
    epoch_1, epoch_2 = epoch(first), epoch(first)
    again = epoch(arrays.contrastive_dataset(images, 16, augment=augment, seed=3))
    other = epoch(arrays.contrastive_dataset(images, 16, augment=augment, seed=4))
    assert len(epoch_1) == 2 and all(view.shape == (16, 32, 32, 3) for b in epoch_1 for view in b)
    for (a1, a2), (b1, b2) in zip(epoch_1, again):
        np.testing.assert_array_equal(a1, b1)
        np.testing.assert_array_equal(a2, b2)
    view_1, view_2 = epoch_1[0]
    assert np.abs(view_1 - view_2).mean() > 0.01 and 0.0 <= view_1.min() and view_1.max() <= 1.0
    assert not np.allclose(epoch_1[0][0], epoch_2[0][0])
    assert not np.allclose(epoch_1[0][0], other[0][0])


def test_array_supervised_covers_every_image_once_per_epoch_with_its_label(images, labels):
    dataset = arrays.supervised_dataset(images, np.arange(40), 16, seed=1)
    orders = []
    for _ in range(2):
        batches = epoch(dataset)
        assert [len(y) for _, y in batches] == [16, 16, 8]
        order = np.concatenate([y for _, y in batches])
        assert sorted(order) == list(range(40)) and list(order) != list(range(40))
        x = np.concatenate([x for x, _ in batches])
        np.testing.assert_allclose(x, images[order] / 255.0, atol=1e-6)
        orders.append(order)
    assert not np.array_equal(*orders)
    y = dataset[0][1]
    assert isinstance(y, np.ndarray) and y.dtype == np.int64


def test_array_alternating_flip_mirrors_each_image_every_other_epoch(images):
    augment = build_augmentation("cifar10", "none", horizontal_flip="alternate")
    dataset = arrays.supervised_dataset(images, np.arange(40), 16, augment=augment, seed=3)
    originals = images.astype(np.float32) / 255.0
    flipped = {}
    for _ in range(4):
        for x, y in epoch(dataset):
            for image, index in zip(x, y):
                was_flipped = np.allclose(image, originals[index, :, ::-1])
                assert was_flipped or np.allclose(image, originals[index])
                flipped.setdefault(index, []).append(was_flipped)
    for visits in flipped.values():
        assert visits == [visits[0], not visits[0]] * 2
    assert 0 < sum(visits[0] for visits in flipped.values()) < 40


def test_array_pipelines_keep_clean_targets_and_normalize_inputs_only(images, augment):
    x, target = arrays.reconstruction_dataset(images, 8, augment=augment, shuffle=False)[0]
    np.testing.assert_allclose(target, images[:8] / 255.0, atol=1e-6)
    assert not np.allclose(x, target)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.2, 0.2)
    x, target = arrays.reconstruction_dataset(images, 4, shuffle=False, normalize=(mean, std))[0]
    np.testing.assert_allclose(x, (images[:4] / 255.0 - mean) / std, atol=1e-5)
    view_1, view_2, clean = arrays.contrastive_dataset(images, 8, augment=augment, with_original=True)[0]
    rows = (images.reshape(40, 1, -1) == np.round(np.asarray(clean) * 255).reshape(1, 8, -1)).all(-1)
    assert rows.any(axis=0).all()
    (encoded,) = arrays.encoding_dataset(images, 16)[2]
    np.testing.assert_allclose(encoded, images[32:] / 255.0, atol=1e-6)
    (floats,) = arrays.prediction_dataset(np.ones((5, 3), np.float64), 4)[1]
    assert np.asarray(floats).dtype == np.float32 and floats.shape == (1, 3)


@pytest.mark.parametrize("module", [pipelines, arrays], ids=["tf.data", "arrays"])
@pytest.mark.parametrize("call, message", [
    (lambda m, im, lb, au: m.contrastive_dataset(im, 1, augment=au), "NT-Xent needs at least 2 images"),
    (lambda m, im, lb, au: m.contrastive_dataset(im, 64, augment=au), "fewer than batch_size=64"),
    (lambda m, im, lb, au: m.contrastive_dataset(im, 8, augment=None), "needs an augmentation"),
    (lambda m, im, lb, au: m.reconstruction_dataset(im.astype(np.float32), 8), "uint8"),
    (lambda m, im, lb, au: m.reconstruction_dataset(im[..., 0], 8), r"shape \(N, H, W, C\)"),
    (lambda m, im, lb, au: m.supervised_dataset(im, lb[:5], 8), "one label per image"),
    (lambda m, im, lb, au: m.encoding_dataset(im, 0), "positive integer"),
    (lambda m, im, lb, au: m.prediction_dataset(im[:0], 8), "no images"),
    (lambda m, im, lb, au: m.contrastive_dataset(im[..., :1], 8, augment=au), "need RGB images"),
])
def test_both_pipelines_reject_bad_input_with_the_same_message(images, labels, augment, module, call, message):
    with pytest.raises(ValueError, match=message):
        call(module, images, labels, augment)


def test_input_pipeline_is_tf_data_where_tensorflow_is_installed_unless_told(images, monkeypatch):
    monkeypatch.delenv("KERAS_LATENT_INPUT", raising=False)
    assert data.input_pipeline() == "tf.data"
    assert isinstance(data.encoding_dataset(images, 8), tf.data.Dataset)
    monkeypatch.setenv("KERAS_LATENT_INPUT", "arrays")
    assert isinstance(data.encoding_dataset(images, 8), arrays.ArrayBatches)
    monkeypatch.setenv("KERAS_LATENT_INPUT", "numpy")
    with pytest.raises(ValueError, match="KERAS_LATENT_INPUT must be one of"):
        data.encoding_dataset(images, 8)


# -- JAX ------------------------------------------------------------------------------------------


def run_jax(script, tmp_path):
    """``script`` in a fresh Python under the JAX backend; its last stdout line as JSON."""
    pytest.importorskip("jax")
    path = tmp_path / "child.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    env.pop("KERAS_LATENT_INPUT", None)
    done = subprocess.run([sys.executable, str(path)], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_under_jax_tf_data_is_bit_identical_and_apply_matches_tensorflow(tmp_path):
    """With TensorFlow installed, JAX gets the tf.data pipelines, bit for bit those of the
    TensorFlow backend; and JAX's compiled ``apply`` gives the TensorFlow path's pixels."""
    batches = tmp_path / "jax_batches.npz"
    result = run_jax(f"""
        import json, sys
        import numpy as np
        import keras_latent.data as data
        imported_tensorflow = "tensorflow" in sys.modules
        from tests.data import parity
        np.savez({str(batches)!r}, *parity.tf_data_batches())
        differences = parity.max_differences(
            lambda augmenter, images, params: augmenter.compiled_apply()(images, params))
        print(json.dumps({{"imported_tensorflow": imported_tensorflow, "pipeline": data.input_pipeline(),
                          "differences": differences}}))
    """, tmp_path)
    assert result["imported_tensorflow"] is False, "import keras_latent.data imported TensorFlow under JAX"
    assert result["pipeline"] == "tf.data"
    assert max(result["differences"].values()) <= parity.TOLERANCE, result["differences"]
    with np.load(batches) as jax_batches:
        for ours, theirs in zip(parity.tf_data_batches(), jax_batches.values(), strict=True):
            np.testing.assert_array_equal(ours, theirs)


def test_array_pipeline_trains_under_jax_without_tensorflow(tmp_path):
    result = run_jax("""
        import json, sys
        import tests.no_tensorflow  # as where TensorFlow is not installed
        import keras
        import numpy as np
        import keras_latent.data as data

        images = np.random.default_rng(0).integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
        augment = data.build_augmentation("cifar10", "simclr", blur_probability=0.5, translate=2,
                                          noise_std=0.05, mask_ratio=0.2)
        view_1, view_2, clean = data.contrastive_dataset(images, 16, augment=augment, with_original=True)[0]
        gray = data.build_augmentation("mnist", "simclr")
        digits = data.reconstruction_dataset(images[..., :1], 16, augment=gray)
        direct = [np.asarray(augment(clean, seed=np.array([1, 2]))) for _ in range(2)]

        flips = data.build_augmentation("cifar10", "shift_flip", horizontal_flip="alternate")
        train = data.supervised_dataset(images, np.arange(40) % 10, 16, augment=flips, seed=1)
        model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(train, epochs=2, verbose=0)
        predictions = model.predict(data.prediction_dataset(images, 16), verbose=0)
        print(json.dumps({
            "pipeline": data.input_pipeline(), "kind": type(view_1).__module__,
            "shapes": [list(view_1.shape), list(view_2.shape), list(digits[2][0].shape)],
            "range": [float(np.min(view_1)), float(np.max(view_1))],
            "views_differ": float(np.mean(np.abs(np.asarray(view_1) - np.asarray(view_2)))),
            "direct_repeats": bool(np.array_equal(*direct)),
            "epochs_trained": train.epoch, "losses": history.history["loss"],
            "predictions": list(predictions.shape),
            "tensorflow": [m for m in sys.modules if m.startswith("tensorflow")],
        }))
    """, tmp_path)
    assert result["pipeline"] == "arrays" and result["kind"].startswith("jax")
    assert result["shapes"] == [[16, 32, 32, 3], [16, 32, 32, 3], [8, 32, 32, 1]]
    assert 0.0 <= result["range"][0] and result["range"][1] <= 1.0 and result["views_differ"] > 0.01
    assert result["direct_repeats"]
    assert result["epochs_trained"] >= 2 and all(np.isfinite(result["losses"]))
    assert result["predictions"] == [40, 10]
    assert result["tensorflow"] == []


def test_an_array_pipeline_set_to_an_epoch_gives_that_epochs_batches(images):
    """A resumed run starts its pipeline at epoch k (``pipeline_epoch.assign``, as
    ``PipelineEpochs`` does): its batches, alternating flips included, are those an
    uninterrupted run reads in epoch k."""
    augment = build_augmentation("cifar10", "none", horizontal_flip="alternate")

    def build():
        return arrays.supervised_dataset(images, np.arange(40), 16, augment=augment, seed=3)

    straight = build()
    for _ in range(3):
        expected = epoch(straight)
    resumed = build()
    resumed.pipeline_epoch.assign(2)
    for (x, y), (x_expected, y_expected) in zip(epoch(resumed), expected, strict=True):
        np.testing.assert_array_equal(y, y_expected)
        np.testing.assert_array_equal(x, x_expected)
