"""SimCLR: learns, tracks its metrics, saves, runs in mixed precision and across replicas."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_latent  # noqa: F401  (registers the custom objects)
from keras_latent.losses import nt_xent
from keras_latent.models import SimCLR, build_decoder, build_encoder, projection_head
from tests.saving_utils import REPO, assert_reloads_in_fresh_process

IMAGE_SHAPE = (12, 12, 1)
LATENT = 8
TINY = dict(kind="mlp", widths=(32,))


def tiny_simclr(hybrid=False, temperature=0.5, reconstruction_weight=1.0, **kwargs):
    encoder = build_encoder(IMAGE_SHAPE, LATENT, **TINY)
    head = projection_head(LATENT, hidden_dim=16, output_dim=8, batch_norm=False)
    decoder = build_decoder(IMAGE_SHAPE, LATENT, **TINY) if hybrid else None
    return SimCLR(encoder, head, temperature=temperature, decoder=decoder,
                  reconstruction_weight=reconstruction_weight if hybrid else 0.0, **kwargs)


def noisy_views(images, seed):
    """Two fixed noisy views of each image: enough of an augmentation for a unit test."""
    rng = np.random.default_rng(seed)
    def view():
        return np.clip(images + rng.normal(0, 0.15, images.shape), 0, 1).astype("float32")
    return view(), view()


@pytest.fixture(scope="module")
def mnist_batch(data_dir):
    """32 MNIST digits, centre-cropped to 12x12 to keep the models tiny."""
    with np.load(data_dir / "mnist.npz") as data:
        images = data["x_train"][:32, 8:20, 8:20, None]
    return images.astype("float32") / 255.0


@pytest.fixture()
def random_batch():
    return np.random.default_rng(0).random((8, *IMAGE_SHAPE)).astype("float32")


def test_call_returns_the_latent_code(random_batch):
    model = tiny_simclr()
    codes = model.predict(random_batch, verbose=0)
    assert codes.shape == (8, LATENT)
    np.testing.assert_allclose(codes, model.encoder.predict(random_batch, verbose=0), atol=1e-6)
    assert model.decoder is None and model.projection_head.name == "projection_head"


def test_loss_falls_on_real_digits(mnist_batch):
    keras.utils.set_random_seed(1)
    model = tiny_simclr()
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    view_1, view_2 = noisy_views(mnist_batch, seed=1)
    history = model.fit(x=(view_1, view_2), batch_size=32, epochs=20, verbose=0).history
    assert set(history) == {"loss", "contrastive_accuracy"}
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["contrastive_accuracy"][-1] > history["contrastive_accuracy"][0]
    # never below the floor: every anchor at best has similarity 1 with its partner, -1 with
    # the 2N - 2 negatives
    floor = np.log(1 + 62 * np.exp(-2 / 0.5))
    assert min(history["loss"]) > floor


def test_metrics_are_named_and_reset(random_batch):
    plain, hybrid = tiny_simclr(), tiny_simclr(hybrid=True)
    assert [m.name for m in plain.metrics] == ["loss", "contrastive_accuracy"]
    assert [m.name for m in hybrid.metrics] == ["loss", "contrastive_accuracy",
                                                "reconstruction_loss"]
    plain.compile(optimizer="adam")
    logs = plain.evaluate(x=(random_batch, random_batch[::-1]), batch_size=8, verbose=0,
                          return_dict=True)
    assert set(logs) == {"loss", "contrastive_accuracy"}


def test_test_step_loss_is_nt_xent_plus_weighted_reconstruction(random_batch):
    model = tiny_simclr(hybrid=True, temperature=0.2, reconstruction_weight=0.3,
                        reconstruction_loss="mse")
    model.compile(optimizer="adam")
    view_1, view_2 = noisy_views(random_batch, seed=2)
    logs = model.evaluate(x=(view_1, view_2, random_batch), batch_size=8, verbose=0,
                          return_dict=True)

    z_1 = model.projection_head(model.encoder(view_1))
    z_2 = model.projection_head(model.encoder(view_2))
    contrastive = float(nt_xent(z_1, z_2, 0.2))
    reconstructions = np.concatenate([model.decoder(model.encoder(v)) for v in (view_1, view_2)])
    mse = float(np.mean((reconstructions - np.concatenate([random_batch] * 2)) ** 2))
    assert logs["reconstruction_loss"] == pytest.approx(mse, rel=1e-5)
    assert logs["loss"] == pytest.approx(contrastive + 0.3 * mse, rel=1e-5)


def test_hybrid_reconstruction_falls(mnist_batch):
    keras.utils.set_random_seed(2)
    model = tiny_simclr(hybrid=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    view_1, view_2 = noisy_views(mnist_batch, seed=3)
    # tf.data yields (view_1, view_2, x_clean), as contrastive_dataset(with_original=True) does
    data = tf.data.Dataset.from_tensor_slices((view_1, view_2, mnist_batch)).batch(32)
    history = model.fit(data, epochs=20, verbose=0).history
    assert set(history) == {"loss", "contrastive_accuracy", "reconstruction_loss"}
    assert history["reconstruction_loss"][-1] < 0.8 * history["reconstruction_loss"][0]
    assert history["loss"][-1] < history["loss"][0]


def test_saved_model_reloads_in_a_fresh_process_and_trains_on(tmp_path, random_batch):
    model = tiny_simclr(hybrid=True, temperature=0.3, reconstruction_loss="mse")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    view_1, view_2 = noisy_views(random_batch, seed=4)
    model.fit(x=(view_1, view_2, random_batch), batch_size=8, epochs=2, verbose=0)
    np.save(tmp_path / "views.npy", np.stack([view_1, view_2]))
    # Keras restores the compiled optimizer and its state: the step counter carries on.
    assert_reloads_in_fresh_process(model, random_batch, tmp_path, atol=1e-6, extra_code=f"""
        assert type(model).__name__ == "SimCLR", type(model)
        assert model.temperature == 0.3 and model.reconstruction_loss == "mse"
        assert model.decoder is not None and model.reconstruction_weight == 1.0
        assert int(model.optimizer.iterations) == 2, int(model.optimizer.iterations)
        v_1, v_2 = np.load({str(tmp_path / "views.npy")!r})
        before = [w.copy() for w in model.get_weights()]
        logs = model.fit(x=(v_1, v_2, x), batch_size=8, epochs=1, verbose=0).history
        assert set(logs) == {{"loss", "contrastive_accuracy", "reconstruction_loss"}}, logs
        assert np.isfinite(logs["loss"][0]) and int(model.optimizer.iterations) == 3
        assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    """)


def test_config_round_trip():
    model = tiny_simclr(temperature=0.1, name="my_simclr")
    clone = SimCLR.from_config(model.get_config())
    assert clone.temperature == 0.1 and clone.name == "my_simclr" and clone.decoder is None
    assert clone.encoder.count_params() == model.encoder.count_params()


def test_one_step_under_mixed_precision(random_batch):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = tiny_simclr(hybrid=True)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        # The encoder computes in float16; its code (what evaluation reads) is float32.
        hidden = [layer for layer in model.encoder.layers if layer.name != "latent" and layer.weights]
        assert all(layer.compute_dtype == "float16" for layer in hidden)
        assert keras.backend.standardize_dtype(model.encoder(random_batch).dtype) == "float32"
        before = [w.copy() for w in model.get_weights()]
        view_1, view_2 = noisy_views(random_batch, seed=5)
        logs = model.fit(x=(view_1, view_2, random_batch), batch_size=8, epochs=1,
                         verbose=0).history
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.isfinite(logs["loss"][0]) and np.isfinite(logs["reconstruction_loss"][0])
    changed = [not np.array_equal(a, b) for a, b in zip(before, model.get_weights())]
    assert any(changed), "the (unscaled) gradients should have moved the weights"
    assert all(keras.backend.standardize_dtype(v.dtype) == "float32"
               for v in model.trainable_variables)


_DISTRIBUTED_SCRIPT = """
import json
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np
import keras_latent
from keras_latent.losses import nt_xent
from keras_latent.models import SimCLR, build_encoder, projection_head

def tiny():
    return SimCLR(build_encoder((12, 12, 1), 8, kind="mlp", widths=(32,)),
                  projection_head(8, hidden_dim=16, output_dim=8, batch_norm=False),
                  temperature=0.5)

rng = np.random.default_rng(0)
view_1, view_2 = rng.random((2, 8, 12, 12, 1)).astype("float32")
data = tf.data.Dataset.from_tensor_slices((view_1, view_2)).batch(8)

keras.utils.set_random_seed(0)
single = tiny()
single.compile(optimizer=keras.optimizers.SGD(0.5))
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    multi = tiny()
    multi.compile(optimizer=keras.optimizers.SGD(0.5))
multi.set_weights(single.get_weights())

z_1 = single.projection_head(single.encoder(view_1))
z_2 = single.projection_head(single.encoder(view_2))
local_only = np.mean([float(nt_xent(z_1[s], z_2[s])) for s in (slice(0, 4), slice(4, 8))])

initial = [w.copy() for w in single.get_weights()]
result = {
    "replicas": strategy.num_replicas_in_sync,
    "local_only": local_only,
    "eval_single": single.evaluate(data, verbose=0, return_dict=True),
    "eval_multi": multi.evaluate(data, verbose=0, return_dict=True),
    "fit_single": single.fit(data, epochs=1, verbose=0).history["loss"][0],
    "fit_multi": multi.fit(data, epochs=1, verbose=0).history["loss"][0],
}
result["weight_change"] = max(float(np.max(np.abs(a - b)))
                              for a, b in zip(initial, single.get_weights()))
result["weight_diff"] = max(float(np.max(np.abs(a - b)))
                            for a, b in zip(single.get_weights(), multi.get_weights()))
print("RESULT " + json.dumps(result))
"""


def test_two_replicas_give_the_single_device_loss_and_step():
    """MirroredStrategy over 2 logical CPUs == one device on the global batch of 8.

    Runs in a fresh process: logical devices must be configured before TensorFlow starts.
    """
    process = subprocess.run([sys.executable, "-c", textwrap.dedent(_DISTRIBUTED_SCRIPT)],
                             capture_output=True, text=True, cwd=str(REPO), timeout=300)
    lines = [line for line in process.stdout.splitlines() if line.startswith("RESULT ")]
    assert process.returncode == 0 and lines, process.stdout[-3000:] + process.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["replicas"] == 2
    single, multi = result["eval_single"], result["eval_multi"]
    assert multi["loss"] == pytest.approx(single["loss"], abs=1e-5)
    assert multi["contrastive_accuracy"] == pytest.approx(single["contrastive_accuracy"], abs=1e-6)
    # per-replica negatives only would give a visibly different (lower) loss
    assert abs(result["local_only"] - single["loss"]) > 1e-2
    assert result["fit_multi"] == pytest.approx(result["fit_single"], abs=1e-5)
    # the same SGD step: gradients through all_gather add up to the single-device gradient
    assert result["weight_change"] > 1e-3 and result["weight_diff"] < 1e-5


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        tiny_simclr(temperature=0)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        tiny_simclr(temperature=-1.0)
    encoder = build_encoder(IMAGE_SHAPE, LATENT, **TINY)
    head = projection_head(LATENT, hidden_dim=16, output_dim=8, batch_norm=False)
    with pytest.raises(ValueError, match="needs a decoder"):
        SimCLR(encoder, head, reconstruction_weight=1.0)
    with pytest.raises(ValueError, match="reconstruction_weight must be >= 0"):
        SimCLR(encoder, head, reconstruction_weight=-1.0)
    with pytest.raises(ValueError, match="not a Keras loss"):
        SimCLR(encoder, head, reconstruction_loss="blurry")


def test_bad_batches_are_rejected(random_batch):
    model = tiny_simclr()
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match="at least 2 images per batch"):
        model.fit(x=(random_batch[:1], random_batch[:1]), batch_size=1, verbose=0)
    with pytest.raises(ValueError, match="same shape"):
        model.fit(x=(random_batch, random_batch[:, :10, :10]), batch_size=8, verbose=0)
    wrong = np.zeros((8, 10, 10, 1), "float32")
    with pytest.raises(ValueError, match="do not fit the encoder"):
        model.fit(x=(wrong, wrong), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="do not fit the encoder"):
        model.evaluate(x=(wrong, wrong), batch_size=8, verbose=0)

    hybrid = tiny_simclr(hybrid=True)
    hybrid.compile(optimizer="adam")
    with pytest.raises(ValueError, match="with_original=True"):
        hybrid.fit(x=(random_batch, random_batch), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="x_clean has shape"):
        hybrid.fit(x=(random_batch, random_batch, wrong), batch_size=8, verbose=0)
