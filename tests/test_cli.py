"""The ``keras-latent`` command: one real subprocess run, errors checked in-process."""

import json
import os
import subprocess
import sys

import keras
import pytest

from keras_latent.cli import main
from keras_latent.data import load_dataset
from keras_latent.models import build_autoencoder, save_model_atomic


@pytest.fixture(scope="module")
def run_dir(data_dir, tmp_path_factory):
    """A paradigm-like run folder: best.keras and the CSVLogger's training_log.csv."""
    folder = tmp_path_factory.mktemp("run")
    x = load_dataset("mnist", data_dir=data_dir).train.take(64, seed=0).images / 255.0
    keras.utils.set_random_seed(0)
    model = build_autoencoder((28, 28, 1), 4, kind="mlp", widths=[16])
    model.compile("adam", "mse")
    model.fit(x, x, epochs=2, batch_size=32, validation_split=0.25, verbose=0,
              callbacks=[keras.callbacks.CSVLogger(str(folder / "training_log.csv"))])
    save_model_atomic(model, folder / "best.keras")
    return folder


@pytest.fixture(scope="module")
def evaluated(run_dir, data_dir):
    """``python -m keras_latent evaluate`` in a fresh process (custom objects must register)."""
    output = run_dir / "eval"
    command = [sys.executable, "-m", "keras_latent", "evaluate", str(run_dir / "best.keras"),
               "--dataset", "mnist", "--data-dir", str(data_dir), "--limit", "60",
               "--tsne-sample", "30", "--method", "tiny-ae", "--output", str(output)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return done, output


def test_evaluate_subprocess_writes_the_report(evaluated):
    done, output = evaluated
    assert done.returncode == 0, done.stderr[-2000:]
    assert "t-SNE on 30 points" in done.stdout
    assert f"report: {output / 'report.md'}" in done.stdout
    assert "reconstruction MAE" in done.stdout
    for line in ("k-NN@20 (majority)", "k-NN@200 (weighted)", "effective rank"):
        assert line in done.stdout, line
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["method"] == "tiny-ae" and metrics["num_examples"]["test"] == 60
    assert "history" in metrics["plots"]  # training_log.csv beside the model was picked up
    assert 0.0 <= metrics["knn200_weighted_accuracy"] <= 1.0
    assert metrics["collapse"]["effective_rank"] >= 1.0


def test_compare_command(evaluated, tmp_path, capsys):
    _, output = evaluated
    assert main(["compare", str(output), str(output), "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| tiny-ae (eval) |") == 2
    assert (tmp_path / "comparison.md").is_file() and (tmp_path / "tsne_grid.png").is_file()


def test_compare_pool_makes_one_row_per_method(evaluated, tmp_path, capsys):
    _, output = evaluated
    assert main(["compare", str(output), str(output), "--pool", "--output", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| tiny-ae |") == 1 and "| tiny-ae | linear probe on frozen codes | 2 |" \
        in printed


def test_evaluate_finds_a_recipe_training_log_under_checkpoints(run_dir, data_dir, tmp_path,
                                                               capsys):
    """Experiments save <run>/autoencoder.keras and <run>/checkpoints/training_log.csv."""
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "autoencoder.keras").write_bytes((run_dir / "best.keras").read_bytes())
    (tmp_path / "checkpoints" / "training_log.csv").write_text(
        (run_dir / "training_log.csv").read_text())
    assert main(["evaluate", str(tmp_path / "autoencoder.keras"), "--dataset", "mnist",
                 "--data-dir", str(data_dir), "--limit", "40", "--tsne-sample", "20",
                 "--output", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["plots"]["history"] == "history.png"


def _saved_functional(folder, inputs, outputs):
    path = folder / "model.keras"
    save_model_atomic(keras.Model(inputs, outputs), path)
    return str(path)


def test_image_output_and_two_input_models_exit_2_and_leave_no_folder(data_dir, tmp_path,
                                                                      capsys):
    image = keras.Input((28, 28, 1))
    image_to_image = _saved_functional(tmp_path, image,
                                       keras.layers.Conv2D(1, 3, padding="same")(image))
    other = keras.Input((28, 28, 1))
    (tmp_path / "two").mkdir()
    two_inputs = _saved_functional(tmp_path / "two", [image, other], keras.layers.Dense(4)(
        keras.layers.Flatten()(keras.layers.Add()([image, other]))))
    for model, words in ((image_to_image, ("latent codes must be vectors",)),
                         (two_inputs, ("takes 2 inputs", "single-input"))):
        assert main(["evaluate", model, "--dataset", "mnist", "--data-dir", str(data_dir),
                     "--limit", "20", "--output", str(tmp_path / "out")]) == 2
        err = _one_line_error(capsys, *words)
        assert "dict" not in err
        assert not (tmp_path / "out").exists()


def _one_line_error(capsys, *words):
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    for word in words:
        assert word in captured.err
    return captured.err


def test_missing_and_corrupt_model_files_exit_2(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.keras"), "--dataset", "mnist"]) == 2
    _one_line_error(capsys, "nope.keras")
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"not a zip file")
    assert main(["evaluate", str(corrupt), "--dataset", "mnist"]) == 2
    _one_line_error(capsys, "corrupt.keras")


def test_unknown_dataset_and_wrong_shape_exit_2(run_dir, data_dir, tmp_path, capsys):
    model = str(run_dir / "best.keras")
    assert main(["evaluate", model, "--dataset", "imagenet", "--output", str(tmp_path)]) == 2
    _one_line_error(capsys, "imagenet")
    assert main(["evaluate", model, "--dataset", "cifar10", "--data-dir", str(data_dir),
                 "--limit", "20", "--output", str(tmp_path)]) == 2
    _one_line_error(capsys, "(28, 28, 1)", "(32, 32, 3)")


def test_compare_without_metrics_and_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["compare", str(tmp_path), "--output", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "metrics.json")
    assert main(["evaluate", "m.keras", "--dataset", "mnist", "--limit", "0"]) == 2
    assert capsys.readouterr().err == ("keras-latent evaluate: error: argument --limit: expected an "
                                       "integer >= 1, got '0' (try: keras-latent evaluate --help)\n")


# ------------------------------- bad input named in one line, before the work (issue 14)


def _mnist_npz(folder, labels):
    import numpy as np

    folder.mkdir(exist_ok=True)
    np.savez_compressed(folder / "mnist.npz", x_train=np.zeros((20, 28, 28), np.uint8),
                        y_train=np.asarray(labels, np.uint8), x_test=np.zeros((5, 28, 28),
                        np.uint8), y_test=np.zeros(5, np.uint8))
    return folder


@pytest.fixture
def no_model_loading(monkeypatch, tmp_path):
    """Fails the test if the command gets as far as loading the model; a private data cache."""
    import keras_latent.models

    def load_model(path):
        raise AssertionError("the model was loaded before the bad input was reported")

    monkeypatch.setattr(keras_latent.models, "load_model", load_model)
    monkeypatch.setenv("KERAS_LATENT_CACHE_DIR", str(tmp_path / "cache"))


def test_an_output_file_and_a_bad_history_exit_2_before_the_work(tmp_path, capsys,
                                                                   no_model_loading):
    model = tmp_path / "best.keras"
    model.write_bytes(b"never read")
    taken = tmp_path / "report.txt"
    taken.write_text("a file")
    assert main(["evaluate", str(model), "--dataset", "mnist", "--output", str(taken)]) == 2
    err = capsys.readouterr().err
    assert "argument --output" in err and "is a file, not a folder" in err
    assert "Traceback" not in err
    for text in ("epoch,note\n0,fine\n", "\x00\x01\x02 not text \xff", ""):
        history = tmp_path / "log.csv"
        history.write_bytes(text.encode("latin-1"))
        assert main(["evaluate", str(model), "--dataset", "mnist", "--history", str(history),
                     "--output", str(tmp_path / "out")]) == 2
        _one_line_error(capsys, "--history", "log.csv")
    assert not (tmp_path / "out").exists()


def test_single_class_and_text_data_files_exit_2(run_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("KERAS_LATENT_CACHE_DIR", str(tmp_path / "cache"))
    model = str(run_dir / "best.keras")
    one_class = _mnist_npz(tmp_path / "one", [7] * 20)
    assert main(["evaluate", model, "--dataset", "mnist", "--data-dir", str(one_class),
                 "--output", str(tmp_path / "out")]) == 2
    _one_line_error(capsys, "single class 7", "--limit")
    text = tmp_path / "text"
    text.mkdir()
    (text / "mnist.npz").write_text("x_train,y_train\n0,1\n")
    assert main(["evaluate", model, "--dataset", "mnist", "--data-dir", str(text),
                 "--output", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys, "mnist.npz is not a NumPy .npz archive")
    assert "pickle" not in err
