"""A bad recipe flag ends with one line naming it and exit status 2 (argparse's convention, as
for ``keras-latent`` and the tuner), before any data is read or output folder is made."""

import importlib
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


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
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"argument {flag}" in error and repr(value) in error
    assert not output.exists()


def test_an_output_that_is_a_file_is_refused(recipe, tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("not a folder")
    for output in (target, target / "run"):
        with pytest.raises(SystemExit) as exit_:
            recipe("mnist_classifier").main(["--output", str(output)])
        assert exit_.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert "argument --output" in error and "is a file" in error
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
