"""Every recipe runs end to end on a tiny slice of the shared data and leaves what it promises:
loadable `.keras` models, a `metrics.json` with finite numbers, and the PNGs its report shows."""

import importlib
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TINY = ["--limit", "160", "--epochs", "1", "--quick", "--quiet"]


@pytest.fixture(scope="module")
def recipe():
    sys.path.insert(0, str(RECIPES))
    yield lambda name: importlib.import_module(name)
    sys.path.remove(str(RECIPES))


def _finite_numbers(value):
    if isinstance(value, dict):
        return all(_finite_numbers(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_numbers(v) for v in value)
    return not isinstance(value, float) or math.isfinite(value)


def _check_run(folder: Path, models):
    import keras

    import keras_latent  # noqa: F401  (registers the custom objects)

    for name in models:
        model = keras.saving.load_model(folder / name)
        if name != "probe.keras":  # a pretrained model is saved whole, not with the probe's frozen encoder
            assert model.encoder.trainable and model.encoder.trainable_weights, name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert _finite_numbers(metrics) and metrics["accuracy"]["test"] is not None
    _check_report(folder)
    return metrics


def _check_report(folder: Path):
    report = (folder / "report.md").read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert images, "the report shows no figure"
    for image in images:
        assert (folder / image).stat().st_size > 0


def test_compare_runs_the_mnist_experiments_and_writes_the_table(recipe, data_dir, tmp_path):
    recipe("compare").main(["--dataset", "mnist", "--output", str(tmp_path), *TINY])
    root = tmp_path / "mnist"
    _check_run(root / "autoencoder", ["autoencoder.keras", "probe.keras"])
    _check_run(root / "classifier", ["classifier.keras"])
    _check_run(root / "simclr", ["simclr.keras", "probe.keras"])
    baseline = _check_run(root / "random_encoder", ["probe.keras"])
    assert baseline["accuracy_source"] == "frozen-encoder MLP probe"
    table = (root / "comparison.md").read_text()
    for method in ("autoencoder + frozen probe", "classification-guided",
                   "SimCLR + frozen probe", "random encoder + frozen probe"):
        assert method in table
    assert (root / "tsne_grid.png").stat().st_size > 0


def _event_tags(folder: Path) -> set:
    """The summary tags of the TensorBoard event files in ``folder``."""
    import tensorflow as tf

    files = list(folder.glob("events.out.tfevents.*"))
    assert files, f"no TensorBoard event file in {folder}"
    return {value.tag for path in files for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value}


@pytest.mark.parametrize("name, models, phases", [
    ("cifar_autoencoder", ["autoencoder.keras", "probe.keras"], ["autoencoder", "probe"]),
    ("cifar_classifier", ["classifier.keras"], ["classifier"]),
    ("cifar_simclr", ["simclr.keras", "probe.keras"], ["simclr", "probe"]),
])
def test_cifar_recipes_run_quick(recipe, data_dir, tmp_path, name, models, phases):
    recipe(name).main(["--output", str(tmp_path), "--limit", "64", "--epochs", "1", "--quick",
                       "--quiet", "--batch-size", "32", "--tensorboard"])
    _check_run(tmp_path, models)
    logs = tmp_path / "tensorboard"
    assert sorted(path.name for path in logs.iterdir()) == sorted(phases)
    for phase in phases:
        assert {"epoch_loss", "epoch_learning_rate"} <= _event_tags(logs / phase / "train")
        assert "epoch_loss" in _event_tags(logs / phase / "validation")
    if name == "cifar_autoencoder":
        assert "reconstructions" in _event_tags(logs / "autoencoder" / "validation")


def test_simclr_recipe_hybrid_flag_adds_a_decoder(recipe, data_dir, tmp_path):
    metrics = recipe("mnist_simclr").main(["--output", str(tmp_path), "--denoise", "0.5", *TINY])
    assert "SimCLR + denoising" in metrics["method"] and "mae" in metrics


def _logged_runs(logs: Path) -> set:
    """The folders under ``logs`` that hold a phase's TensorBoard ``train`` events."""
    return {str(path.parent.parent.relative_to(logs))
            for path in logs.rglob("train/events.out.tfevents.*")}


def test_latent_sweep_plots_both_curves(recipe, data_dir, tmp_path):
    results = recipe("latent_sweep").main(["--output", str(tmp_path), "--latent-dims", "2", "8",
                                           "--base-channels", "4", "--tensorboard", *TINY])
    assert set(results["c=4"]) == {2, 8}
    _check_report(tmp_path)
    # Each setting of the sweep logs to its own folder, so that curves do not overlap.
    assert _logged_runs(tmp_path / "tensorboard") == {
        f"c4_z{dim}/{phase}" for dim in (2, 8) for phase in ("autoencoder", "probe")}


def test_few_shot_and_decoder_probe(recipe, data_dir, tmp_path):
    results = recipe("few_shot").main(["--output", str(tmp_path / "fs"), "--num-labels", "20",
                                       "--tensorboard", *TINY])
    assert len(results[20]) == 4 and all(0 <= v <= 1 for v in results[20].values())
    assert _logged_runs(tmp_path / "fs" / "tensorboard") == {
        "autoencoder", "simclr", "20_labels/autoencoder/probe", "20_labels/SimCLR/probe",
        "20_labels/random/probe", "20_labels/scratch/classifier"}
    maes = recipe("decoder_probe").main(["--output", str(tmp_path / "dp"), "--tensorboard",
                                         *TINY])
    assert set(maes) == {"autoencoder", "classifier encoder + decoder"}
    _check_report(tmp_path / "dp")
    assert _logged_runs(tmp_path / "dp" / "tensorboard") == {
        "classifier", "autoencoder", "decoder"}


def test_a_recipe_runs_as_a_script_and_fails_cleanly_without_data(tmp_path):
    result = subprocess.run(
        [sys.executable, str(RECIPES / "mnist_classifier.py"), "--data-dir",
         str(tmp_path / "missing"), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "missing" in result.stderr and "Traceback" not in result.stderr
