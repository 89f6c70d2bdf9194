"""A bad recipe flag ends with one line naming it and pointing at --help, and exit status 2
(README's promise, as for ``keras-latent`` and the tuner), before any data is read or output
folder is made."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"
SIMCLR = "python recipes/mnist_simclr.py"

#: What each number flag expects (keras_latent/flags.py's argparse types).
EXPECTED = {"--epochs": "an integer >= 1", "--batch-size": "an integer >= 1",
            "--limit": "an integer >= 1", "--seed": "an integer >= 0",
            "--learning-rate": "a finite number > 0", "--temperature": "a finite number > 0"}


def _flag_error(prog, message):
    """The whole stderr of a bad flag: one line, naming it, pointing at --help."""
    return f"{prog}: error: {message} (try: {prog} --help)\n"


@pytest.fixture(scope="module")
def recipe():
    sys.path.insert(0, str(RECIPES))
    yield lambda name: importlib.import_module(name)
    sys.path.remove(str(RECIPES))


@pytest.mark.parametrize("flag, value", [
    ("--epochs", "-1"), ("--epochs", "0"), ("--batch-size", "0"), ("--limit", "-5"),
    ("--limit", "0"), ("--learning-rate", "0"), ("--learning-rate", "inf"),
    ("--learning-rate", "nan"), ("--seed", "-1"), ("--epochs", "two"),
    ("--temperature", "0"), ("--temperature", "-0.5"), ("--temperature", "nan"),
])
def test_a_bad_number_is_named_and_nothing_is_created(recipe, tmp_path, capsys, flag, value):
    output = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        recipe("mnist_simclr").main(["--output", str(output), flag, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == _flag_error(
        SIMCLR, f"argument {flag}: expected {EXPECTED[flag]}, got {value!r}")
    assert not output.exists()


@pytest.mark.parametrize("argv, message", [
    (["--epoch", "3"], "unrecognized arguments: --epoch 3"),  # no abbreviations
    (["--learning_rate", "1e-3"], "unrecognized arguments: --learning_rate 1e-3"),
    (["--dataset", "imagenet"], "argument --dataset: invalid choice: 'imagenet' (choose from "
                                "'mnist', 'cifar10', 'fashion_mnist')"),
])
def test_an_unknown_or_abbreviated_flag_is_one_line(recipe, tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        recipe("mnist_simclr").main(["--output", str(tmp_path / "run"), *argv])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == _flag_error(SIMCLR, message)


def test_a_bad_flag_from_the_shell_is_one_line_and_exit_2(tmp_path):
    """As README says, for the script run from a shell (stdout stays empty)."""
    completed = subprocess.run(
        [sys.executable, "recipes/cifar_autoencoder.py", "--epochs", "0", "--output",
         str(tmp_path / "run")], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert (completed.returncode, completed.stdout) == (2, "")
    assert completed.stderr == _flag_error(
        "python recipes/cifar_autoencoder.py",
        "argument --epochs: expected an integer >= 1, got '0'")


def test_an_output_that_is_a_file_is_refused(recipe, tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    for output in (target, target / "run"):
        with pytest.raises(SystemExit) as exit_:
            recipe("mnist_classifier").main(["--output", str(output)])
        assert exit_.value.code == 2
        assert capsys.readouterr().err == _flag_error(
            "python recipes/mnist_classifier.py",
            f"argument --output: {target} is a file, not a folder; pass a folder")
    assert target.read_text() == "not a folder"


def test_missing_data_exits_2_without_an_output_folder(recipe, tmp_path, capsys):
    output = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        recipe("mnist_classifier").main(["--data-dir", str(tmp_path / "missing"),
                                         "--output", str(output)])
    assert exit_.value.code == 2
    assert "missing" in capsys.readouterr().err
    assert not output.exists()


def test_single_class_data_exits_2_before_training(recipe, tmp_path, capsys, monkeypatch):
    import numpy as np

    monkeypatch.setenv("KERAS_LATENT_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    np.savez_compressed(data / "mnist.npz", x_train=np.zeros((20, 28, 28), np.uint8),
                        y_train=np.full(20, 3, np.uint8), x_test=np.zeros((5, 28, 28), np.uint8),
                        y_test=np.zeros(5, np.uint8))
    output = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        recipe("mnist_classifier").main(["--data-dir", str(data), "--output", str(output)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "single class 3" in error and len(error.splitlines()) == 1


@pytest.mark.parametrize("tf_config, words", [
    (None, "needs the TF_CONFIG environment variable"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}',
     "TF_CONFIG task index 3 is not in [0, 1)"),
])
def test_multi_worker_without_a_usable_tf_config_ends_in_one_line(recipe, tmp_path, capsys,
                                                                 monkeypatch, tf_config, words):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    output = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_:
        recipe("mnist_autoencoder").main(["--strategy", "multi_worker", "--output", str(output)])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and error[0].startswith("error: ") and words in error[0]
    assert not output.exists()
