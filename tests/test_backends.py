"""keras-latent on every Keras backend: a light import, JAX training without TensorFlow (SimCLR
learns, each recipe's --quick run, the tuner), and `.keras` files that move between backends.

A process runs one Keras backend, so every other backend runs in a child Python. "Without
TensorFlow" is made true in the child by ``tests/no_tensorflow.py``, which answers every import
of TensorFlow as on a machine that has only JAX.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

pytest.importorskip("jax")

_BLOCK_TENSORFLOW = "import tests.no_tensorflow\n"


def run_python(code, *args, backend="jax", without_tensorflow=True, timeout=600):
    """Run ``code`` in a child Python on ``backend``; returns its stdout (asserts exit 0)."""
    env = {**os.environ, "KERAS_BACKEND": backend}
    script = (_BLOCK_TENSORFLOW if without_tensorflow else "") + textwrap.dedent(code)
    completed = subprocess.run([sys.executable, "-c", script, *map(str, args)], cwd=REPO,
                               env=env, capture_output=True, text=True, timeout=timeout)
    assert completed.returncode == 0, (
        f"child on {backend} failed (exit {completed.returncode}):\n"
        f"{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}")
    return completed.stdout


def test_importing_the_package_loads_neither_keras_nor_tensorflow():
    out = run_python("""
        import sys
        import keras_latent
        import keras_latent.flags, keras_latent.errors, keras_latent.io
        print(sorted(m for m in ("keras", "tensorflow", "jax") if m in sys.modules))
    """, without_tensorflow=False)
    assert out.strip() == "[]"


def test_the_models_and_data_load_on_jax_without_tensorflow_and_register_their_classes():
    out = run_python("""
        import sys
        import keras
        import keras_latent
        import keras_latent.data, keras_latent.models, keras_latent.paradigms.fitting
        assert keras.backend.backend() == "jax"
        assert keras.saving.get_registered_object("keras_latent>SimCLR") is not None
        assert keras.saving.get_registered_object("keras_latent>Augmenter") is not None
        print("tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
    """)
    assert out.strip().splitlines()[-1] == "False"


def test_simclr_learns_on_jax_without_tensorflow(data_dir):
    # Three epochs on 2,000 MNIST digits through the paradigm (array pipeline, augmentation on
    # the device, SimCLR's JAX train_step): the loss falls and the codes sort the digits.
    out = run_python("""
        import json, sys
        import numpy as np
        import keras_latent as kl
        from keras_latent.evaluation.metrics import encode, knn_accuracy

        splits = kl.data.load_dataset("mnist", data_dir=sys.argv[1], seed=0).limit(2000, seed=0)
        config = kl.paradigms.SIMCLR_CONFIG.replace(epochs=3, batch_size=128, verbose=0,
                                                    precision="float32")
        run = kl.paradigms.train_simclr(splits, architecture="mnist_conv", latent_dim=32,
                                        projection_hidden=64, projection_dim=32,
                                        knn_examples=500, config=config)
        train = encode(run.model, splits.train.images)
        test = encode(run.model, splits.test.images)
        knn = knn_accuracy(train, splits.train.labels, test, splits.test.labels)
        print(json.dumps({"loss": run.history["loss"], "knn": knn}))
    """, data_dir)
    result = json.loads(out.strip().splitlines()[-1])
    losses = result["loss"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.1, losses
    assert result["knn"] > 0.6, result  # chance: 0.1


@pytest.mark.parametrize("recipe, models", [
    ("mnist_simclr", ["simclr.keras", "probe.keras"]),
    ("mnist_autoencoder", ["autoencoder.keras", "probe.keras"]),
    ("mnist_classifier", ["classifier.keras"]),
])
def test_each_recipe_runs_on_jax_without_tensorflow(recipe, models, data_dir, tmp_path):
    out = run_python("""
        import runpy, sys
        sys.argv = [sys.argv[1], *sys.argv[2:]]
        sys.path.insert(0, "recipes")
        runpy.run_path(sys.argv[0], run_name="__main__")
    """, f"recipes/{recipe}.py", "--backend", "jax", "--quick", "--quiet", "--limit", "600",
        "--data-dir", data_dir, "--output", tmp_path)
    assert "backend: jax" in out
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["run"]["backend"] == "jax" and "tensorflow" not in metrics["run"]["versions"]
    assert metrics["accuracy"]["test"] > 0.2, metrics["accuracy"]  # 1 epoch on 600 digits
    assert "- backend: jax; device: CPU" in (tmp_path / "report.md").read_text()
    for name in models:
        assert (tmp_path / name).stat().st_size > 0


def test_the_tuner_searches_on_jax(data_dir, tmp_path):
    run_python("""
        import sys
        from tuning import search
        sys.exit(search.main(sys.argv[1:]))
    """, "--backend", "jax", "--task", "autoencoder", "--dataset", "mnist", "--max-trials", "2",
        "--epochs", "1", "--batch-size", "64", "--limit", "300", "--min-depth", "1",
        "--max-depth", "2", "--min-channels", "4", "--max-channels", "8", "--latent-dim", "8",
        "--quiet", "--data-dir", data_dir, "--directory", tmp_path, "--project", "ae")
    trials = list((tmp_path / "ae").glob("trial_*/trial.json"))
    assert len(trials) == 2
    assert all(json.loads(path.read_text())["status"] == "COMPLETED" for path in trials)


# -- `.keras` files move between backends ------------------------------------------------------

_SAVE = """
import sys
from pathlib import Path
import numpy as np
import keras
import keras_latent as kl

folder = Path(sys.argv[1])
x = np.random.default_rng(0).uniform(size=(16, 32, 32, 3)).astype("float32")
keras.utils.set_random_seed(0)
autoencoder = kl.models.build_autoencoder((32, 32, 3), 16, **kl.models.get_preset("cifar_conv"))
autoencoder.compile(optimizer="adam", loss="mae")
autoencoder.fit(x, x, epochs=1, batch_size=8, verbose=0)  # batch-norm statistics move
encoder = kl.models.build_encoder((32, 32, 3), 16, **kl.models.get_preset("cifar_conv"))
simclr = kl.models.SimCLR(encoder, kl.models.projection_head(16, hidden_dim=32, output_dim=8))
simclr.compile(optimizer="adam")
simclr.fit((x, x[:, :, ::-1]), epochs=1, batch_size=8, verbose=0)
for name, model in (("autoencoder", autoencoder), ("simclr", simclr)):
    model.save(folder / f"{name}.keras")
    np.save(folder / f"{name}.npy", np.asarray(model.predict(x, verbose=0)))
np.save(folder / "x.npy", x)
"""

_LOAD = """
import sys
from pathlib import Path
import numpy as np
import keras
import keras_latent.models

folder = Path(sys.argv[1])
x = np.load(folder / "x.npy")
for name in ("autoencoder", "simclr"):
    model = keras.saving.load_model(folder / f"{name}.keras")
    got = np.asarray(model.predict(x, verbose=0))
    diff = float(np.max(np.abs(got - np.load(folder / f"{name}.npy"))))
    assert diff <= 1e-5, (name, diff)
    print(name, diff)
"""


def test_a_model_saved_on_jax_loads_on_tensorflow_and_predicts_the_same(tmp_path):
    run_python(_SAVE, tmp_path)
    out = run_python(_LOAD, tmp_path, backend="tensorflow", without_tensorflow=False)
    assert out.count("\n") == 2, out


def test_a_model_saved_on_tensorflow_loads_on_jax_and_predicts_the_same(tmp_path):
    run_python(_SAVE, tmp_path, backend="tensorflow", without_tensorflow=False)
    out = run_python(_LOAD, tmp_path)
    assert out.count("\n") == 2, out


def test_keras_latent_evaluate_reads_a_model_saved_on_jax(data_dir, tmp_path):
    run_python("""
        import sys
        import numpy as np
        import keras
        import keras_latent as kl

        splits = kl.data.load_dataset("mnist", data_dir=sys.argv[1], seed=0).limit(300, seed=0)
        model = kl.models.build_autoencoder((28, 28, 1), 8, **kl.models.get_preset("mnist_conv"))
        model.compile(optimizer="adam", loss="mae")
        x = splits.train.images.astype("float32") / 255.0
        model.fit(x, x, epochs=1, batch_size=64, verbose=0)
        model.save(sys.argv[2])
    """, data_dir, tmp_path / "autoencoder.keras")
    from keras_latent.cli import main

    status = main(["evaluate", str(tmp_path / "autoencoder.keras"), "--dataset", "mnist",
                   "--data-dir", str(data_dir), "--limit", "300", "--tsne-sample", "100",
                   "--output", str(tmp_path / "evaluation")])
    assert status == 0
    metrics = json.loads((tmp_path / "evaluation" / "metrics.json").read_text())
    assert np.isfinite(metrics["mae"]["test"])


def test_simclr_on_two_jax_devices_trains_as_one_device_with_the_global_batch():
    # Keras' DataParallel (--strategy mirrored on JAX) splits each batch of 16 over two devices;
    # NT-Xent still contrasts every image with all 16 (not the 8 on its device), so one step
    # gives the loss and the weights of one device.
    out = run_python("""
        import contextlib, os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        import numpy as np
        import keras
        from keras_latent.models import SimCLR, build_encoder, projection_head
        from keras_latent.paradigms.distributed import resolve_strategy

        rng = np.random.default_rng(0)
        views = [rng.uniform(size=(16, 12, 12, 1)).astype("float32") for _ in range(2)]

        def one_step(distribution):
            keras.utils.set_random_seed(0)
            with distribution.scope() if distribution else contextlib.nullcontext():
                model = SimCLR(build_encoder((12, 12, 1), 8, kind="mlp", widths=(32,)),
                               projection_head(8, hidden_dim=16, output_dim=8, batch_norm=False))
                model.compile(optimizer=keras.optimizers.SGD(0.5))
                loss = model.fit(tuple(views), batch_size=16, epochs=1, verbose=0,
                                 shuffle=False).history["loss"][0]
            return loss, model.get_weights()

        strategy = resolve_strategy("mirrored")
        assert len(strategy.device_mesh.devices.flatten()) == 2, strategy
        loss_1, weights_1 = one_step(None)
        loss_2, weights_2 = one_step(strategy)
        gap = max(float(np.max(np.abs(a - b))) for a, b in zip(weights_1, weights_2))
        print(loss_1, loss_2, gap)
        assert abs(loss_1 - loss_2) < 1e-5 and gap < 1e-5
    """)
    assert out.strip()
