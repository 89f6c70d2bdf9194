"""evaluate_model on tiny saved models of every kind, trained a few steps on an MNIST slice."""

import dataclasses
import json
import math
import re

import keras
import numpy as np
import pytest

from keras_latent.data import load_dataset
from keras_latent.evaluation import report
from keras_latent.models import (
    SimCLR,
    build_autoencoder,
    build_classifier,
    build_encoder,
    load_model,
    projection_head,
    save_model_atomic,
)

LATENT = 8
MLP = {"kind": "mlp", "widths": [32]}
TSNE_SAMPLE = 60


@pytest.fixture(scope="module")
def splits(data_dir):
    return load_dataset("mnist", data_dir=data_dir).limit(120, seed=0)


def _float(images):
    return images.astype("float32") / 255.0


def _saved(model, tmp_path_factory, name):
    """Round-trip through a .keras file, as the CLI sees a model."""
    path = tmp_path_factory.mktemp(name) / "model.keras"
    save_model_atomic(model, path)
    return load_model(path)


@pytest.fixture(scope="module")
def autoencoder(splits, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_autoencoder((28, 28, 1), LATENT, **MLP)
    model.compile("adam", "mse")
    x = _float(splits.train.images)
    history = model.fit(x, x, validation_split=0.25, epochs=2, batch_size=32, verbose=0)
    return _saved(model, tmp_path_factory, "ae"), history


@pytest.fixture(scope="module")
def classifier(splits, tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = build_classifier((28, 28, 1), 10, LATENT, **MLP)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(_float(splits.train.images), splits.train.labels, epochs=2, batch_size=32, verbose=0)
    return _saved(model, tmp_path_factory, "clf")


@pytest.fixture(scope="module")
def simclr(splits, tmp_path_factory):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = SimCLR(build_encoder((28, 28, 1), LATENT, **MLP),
                   projection_head(LATENT, hidden_dim=16, output_dim=8))
    model.compile("adam")
    x = _float(splits.train.images)
    rng = np.random.default_rng(0)
    views = [np.clip(x + 0.1 * rng.normal(size=x.shape), 0, 1).astype("float32") for _ in "12"]
    model.fit(tf.data.Dataset.from_tensor_slices(tuple(views)).batch(40, drop_remainder=True),
              epochs=1, shuffle=False, verbose=0)
    return _saved(model, tmp_path_factory, "simclr")


def _check_report(result, output_dir, kind):
    on_disk = json.loads((output_dir / "metrics.json").read_text())
    assert on_disk == result
    assert on_disk["kind"] == kind and on_disk["dataset"] == "mnist"
    for key in ("method", "accuracy", "knn_accuracy", "linear_probe_accuracy", "silhouette",
                "per_class_accuracy", "latent_tsne", "plots"):
        assert key in on_disk, key
    assert set(on_disk["accuracy"]) == {"train", "val", "test"}
    numbers = list(on_disk["accuracy"].values()) + [
        on_disk["knn_accuracy"], on_disk["linear_probe_accuracy"]]
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in numbers)
    assert -1.0 <= on_disk["silhouette"] <= 1.0
    assert len(on_disk["per_class_accuracy"]) == 10
    # the test accuracy is what the confusion matrix says
    cm = np.array(on_disk["confusion_matrix"])
    assert cm.sum() == on_disk["num_examples"]["test"]
    assert np.trace(cm) / cm.sum() == pytest.approx(on_disk["accuracy"]["test"])

    tsne = np.load(output_dir / on_disk["latent_tsne"])
    assert tsne["latent_2d"].shape == (TSNE_SAMPLE, 2) and len(tsne["labels"]) == TSNE_SAMPLE
    assert np.all(np.isfinite(tsne["latent_2d"]))

    markdown = (output_dir / "report.md").read_text()
    linked = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert sorted(linked) == sorted(on_disk["plots"].values())
    for name in linked:
        assert (output_dir / name).stat().st_size > 1000
    assert "| accuracy" in markdown
    _check_code_figures(on_disk, markdown)
    return on_disk


def _check_code_figures(on_disk, markdown):
    """k-NN@200 and the collapse diagnostics are stored, shown, and only a contrastive model
    gets alignment and uniformity."""
    assert 0.0 <= on_disk["knn200_weighted_accuracy"] <= 1.0
    assert "exp(similarity / 0.07)" in on_disk["knn_weighted_protocol"]
    scores = on_disk["collapse"]
    assert 1.0 <= scores["effective_rank"] <= LATENT
    assert len(scores["singular_values"]) == LATENT
    assert "effective rank" in markdown and "k=200" in markdown
    assert ("pairs" in on_disk) == (on_disk["kind"] == "simclr")
    assert ("uniformity" in markdown) == (on_disk["kind"] == "simclr")


def test_autoencoder_report(autoencoder, splits, tmp_path, capsys):
    model, history = autoencoder
    result = report.evaluate_model(model, splits, tmp_path, method="ae-mlp", history=history,
                                   tsne_sample=TSNE_SAMPLE)
    metrics = _check_report(result, tmp_path, "autoencoder")
    assert metrics["method"] == "ae-mlp"
    assert metrics["accuracy_source"].startswith("linear probe")
    assert set(metrics["plots"]) == {"reconstructions", "interpolation", "tsne",
                                     "confusion_matrix", "spectrum", "history"}
    # MAE equals a NumPy reference on the test split
    x = _float(splits.test.images)
    expected = float(np.mean(np.abs(model.predict(x, verbose=0) - x)))
    assert metrics["mae"]["test"] == pytest.approx(expected, rel=1e-4)
    assert f"t-SNE on {TSNE_SAMPLE} points" in capsys.readouterr().out


def test_classifier_report_uses_its_head(classifier, splits, tmp_path):
    result = report.evaluate_model(classifier, splits, tmp_path, tsne_sample=TSNE_SAMPLE,
                                   verbose=False)
    metrics = _check_report(result, tmp_path, "classifier")
    assert "mae" not in metrics and "reconstructions" not in metrics["plots"]
    logits = classifier.predict(_float(splits.val.images), verbose=0)
    expected = float(np.mean(np.argmax(logits, axis=1) == splits.val.labels))
    assert metrics["accuracy"]["val"] == pytest.approx(expected)


def test_flip_tta_accuracy_is_reported_beside_the_plain_one(classifier, splits, tmp_path):
    result = report.evaluate_model(classifier, splits, tmp_path, tsne_sample=TSNE_SAMPLE,
                                   flip_tta=True, verbose=False)
    tta = result["accuracy_flip_tta"]
    assert tta["train"] is None and set(tta) == {"train", "val", "test"}
    x = _float(splits.test.images)
    logits = classifier.predict(x, verbose=0) + classifier.predict(x[:, :, ::-1], verbose=0)
    expected = float(np.mean(np.argmax(logits, axis=1) == splits.test.labels))
    assert tta["test"] == pytest.approx(expected)
    assert "flip test-time augmentation" in (tmp_path / "report.md").read_text()


def test_a_given_probe_gives_the_accuracy_and_its_head_kind_is_named(autoencoder, splits,
                                                                     tmp_path):
    from keras_latent.models import Classifier, HeadEnsemble, linear_head, mlp_head

    model, _ = autoencoder
    ensemble = HeadEnsemble([mlp_head(LATENT, 10, widths=[16]) for _ in range(2)])
    for head, kind in ((mlp_head(LATENT, 10, widths=[16]), "MLP"), (linear_head(LATENT, 10), "linear"),
                       (ensemble, "2-head MLP")):
        probe = Classifier(model.encoder, head, freeze_encoder=True)
        metrics = report.evaluate_model(model, splits, tmp_path / kind, tsne_sample=TSNE_SAMPLE,
                                        classifier=probe, verbose=False)
        assert metrics["accuracy_source"] == f"frozen-encoder {kind} probe"
        predicted = np.argmax(probe.predict(_float(splits.test.images), verbose=0), axis=1)
        assert metrics["accuracy"]["test"] == pytest.approx(np.mean(predicted == splits.test.labels))


def test_codes_given_for_a_split_are_reused_not_encoded_again(autoencoder, splits, tmp_path,
                                                             monkeypatch, capsys):
    model, _ = autoencoder
    plain = report.evaluate_model(model, splits, tmp_path / "plain", tsne_sample=TSNE_SAMPLE,
                                  verbose=False)
    encoded = []
    encode = report.metrics.encode
    monkeypatch.setattr(report.metrics, "encode",
                        lambda m, images, **kw: encoded.append(int(images.sum())) or encode(m, images, **kw))
    train_codes = encode(model, splits.train.images)
    reused = report.evaluate_model(model, splits, tmp_path / "reused", tsne_sample=TSNE_SAMPLE,
                                   codes={"train": train_codes, "val": train_codes[:3]})
    # train reused; val given with the wrong count, so encoded again (as test is)
    def tag(split):
        return int(split.images.sum())
    assert tag(splits.train) not in encoded
    assert tag(splits.val) in encoded and tag(splits.test) in encoded
    assert reused["accuracy"] == plain["accuracy"] and reused["mae"] == plain["mae"]
    assert "the train codes reused from the probe" in capsys.readouterr().out


def test_simclr_and_plain_encoder_reports(simclr, splits, tmp_path):
    from keras_latent.evaluation import collapse

    assert report.model_kind(simclr) == "simclr"
    result = report.evaluate_model(simclr, splits, tmp_path / "simclr", tsne_sample=TSNE_SAMPLE,
                                   verbose=False)
    _check_report(result, tmp_path / "simclr", "simclr")
    pairs = result["pairs"]
    assert pairs["pairs"] == len(splits.test.labels)
    assert 0.0 < pairs["alignment"] <= 4.0 and -4.0 <= pairs["uniformity"] < 0.0
    codes = report.metrics.encode(simclr, splits.test.images)
    assert result["collapse"]["effective_rank"] == pytest.approx(collapse.effective_rank(codes))

    encoder = simclr.encoder
    assert report.model_kind(encoder) == "encoder"
    again = report.evaluate_model(encoder, splits, tmp_path / "enc", tsne_sample=TSNE_SAMPLE,
                                  verbose=False)
    _check_report(again, tmp_path / "enc", "encoder")
    # same codes, same seeded probe: the encoder alone scores exactly like its SimCLR wrapper
    assert again["accuracy"] == result["accuracy"]
    assert again["knn_accuracy"] == result["knn_accuracy"]


def test_shape_mismatch_is_a_clear_error(autoencoder, splits, tmp_path):
    model, _ = autoencoder
    rgb = dataclasses.replace(
        splits, train=dataclasses.replace(splits.train, images=np.zeros((4, 32, 32, 3), "uint8"),
                                          labels=np.arange(4)))
    with pytest.raises(ValueError, match=r"expects images of shape \(28, 28, 1\)"):
        report.evaluate_model(model, rgb, tmp_path, verbose=False)
    assert not (tmp_path / "metrics.json").exists()


def test_encoder_with_image_output_is_rejected_and_leaves_no_folder(splits, tmp_path):
    inputs = keras.Input((28, 28, 1))
    not_an_encoder = keras.Model(inputs, keras.layers.Conv2D(2, 3, padding="same")(inputs))
    assert report.model_kind(not_an_encoder) == "encoder"
    with pytest.raises(ValueError, match="latent codes must be vectors"):
        report.evaluate_model(not_an_encoder, splits, tmp_path / "out", verbose=False)
    assert not (tmp_path / "out").exists()


def test_a_two_input_model_is_one_clear_error_and_leaves_no_folder(splits, tmp_path):
    first, second = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    joined = keras.layers.Dense(4)(keras.layers.Flatten()(keras.layers.Add()([first, second])))
    with pytest.raises(ValueError, match="takes 2 inputs.*single-input"):
        report.evaluate_model(keras.Model([first, second], joined), splits, tmp_path / "out",
                              verbose=False)
    assert not (tmp_path / "out").exists()


def test_diverged_model_is_rejected(splits, tmp_path):
    inputs = keras.Input((28, 28, 1))
    codes = keras.layers.Lambda(lambda x: keras.ops.log(keras.ops.zeros_like(x[:, 0, :4, 0]) - 1))(
        keras.layers.Identity()(inputs))
    with pytest.raises(ValueError, match="NaN or inf"):
        report.evaluate_model(keras.Model(inputs, codes), splits, tmp_path, verbose=False)


def test_run_metadata_is_stored_and_reported(classifier, splits, tmp_path):
    from keras_latent.evaluation.metadata import run_metadata

    metadata = run_metadata(seed=3, precision="mixed_bfloat16", phases={"training": 12.34})
    result = report.evaluate_model(classifier, splits, tmp_path, tsne_sample=TSNE_SAMPLE,
                                   metadata=metadata, verbose=False)
    run = json.loads((tmp_path / "metrics.json").read_text())["run"]
    assert run == result["run"]
    assert run["seed"] == 3 and run["precision"] == "mixed_bfloat16"
    assert run["phases_s"]["training"] == 12.3 and run["phases_s"]["evaluation"] > 0
    assert run["versions"]["keras"] == keras.__version__ and run["versions"]["tensorflow"]
    assert run["device"] and "pytest" in run["command"]
    markdown = (tmp_path / "report.md").read_text()
    assert "## Run" in markdown and "mixed_bfloat16" in markdown


def test_training_metadata_takes_the_seed_and_precision_from_the_config():
    from keras_latent.evaluation.metadata import training_metadata
    from keras_latent.paradigms import TrainingConfig

    run = training_metadata(TrainingConfig(seed=7, precision="float32"), {"probe": 1.26})
    assert (run["seed"], run["precision"], run["phases_s"]) == (7, "float32", {"probe": 1.3})
    assert training_metadata(None)["seed"] is None


def test_the_commit_is_read_once_so_a_run_reports_the_code_it_started_with(monkeypatch):
    """``_plumbing.setup`` pins it at the start; a commit made during a long run must not
    relabel the run's results (seen: a 30-minute run named the commit made while it trained)."""
    import subprocess

    from keras_latent.evaluation import metadata

    metadata.git_commit.cache_clear()
    at_start = metadata.git_commit()

    def moved_on(*args, **kwargs):
        raise AssertionError("git asked again after the start of the run")

    monkeypatch.setattr(subprocess, "run", moved_on)
    assert metadata.git_commit() == at_start
    assert metadata.run_metadata()["git_commit"] == at_start
    metadata.git_commit.cache_clear()


# --------------------------------------------------------------------------- single steps


def _encoded(train, test):
    """EncodedSplits of hand-made codes: ``{label: codes}`` per split, no images needed."""
    def split(by_label):
        codes = np.concatenate(list(by_label.values())).astype("float32")
        labels = np.concatenate([np.full(len(z), label) for label, z in by_label.items()])
        return codes, labels

    (train_z, train_y), (test_z, test_y) = split(train), split(test)
    return report.EncodedSplits(images={"train": None, "val": None, "test": None},
                                labels={"train": train_y, "val": train_y[:0], "test": test_y},
                                codes={"train": train_z, "val": None, "test": test_z})


def test_code_scores_of_separated_classes():
    from keras_latent.evaluation import metrics

    rng = np.random.default_rng(0)

    def cluster(centre, n):
        return centre + 0.05 * rng.normal(size=(n, 3))

    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    encoded = _encoded({0: cluster(a, 30), 1: cluster(b, 30)}, {0: cluster(a, 10), 1: cluster(b, 10)})
    probe = metrics.fit_linear_probe(encoded.codes["train"], encoded.labels["train"], seed=0)
    scores = report._code_scores(encoded, probe, knn_k=5, seed=0)
    assert list(scores) == ["knn_k", "knn_accuracy", "knn200_weighted_accuracy",
                            "knn_weighted_protocol", "linear_probe_accuracy", "silhouette"]
    assert scores["knn200_weighted_accuracy"] == 1.0
    assert scores["knn_k"] == 5 and scores["knn_accuracy"] == scores["linear_probe_accuracy"] == 1.0
    assert scores["silhouette"] > 0.8
    one_class = _encoded({0: cluster(a, 30), 1: cluster(b, 30)}, {0: cluster(a, 10)})
    assert report._code_scores(one_class, probe, knn_k=5, seed=0)["silhouette"] is None


def test_accuracy_source_split_accuracies_and_class_scores():
    model = object()
    assert report._pick_accuracy_source(model, "autoencoder", None) == (
        None, "linear probe on frozen codes")
    assert report._pick_accuracy_source(model, "classifier", None) == (model, "classifier head")

    encoded = _encoded({0: np.zeros((2, 2)), 1: np.ones((2, 2))}, {0: np.zeros((2, 2)), 1: np.ones((2, 2))})
    predictions = {"train": np.array([0, 0, 1, 1]), "test": np.array([0, 1, 1, 1])}
    assert report._split_accuracies(encoded, predictions) == {"train": 1.0, "val": None, "test": 0.75}
    scores = report._class_scores(encoded.labels["test"], predictions["test"], ["zero", "one", "two"])
    assert scores == {"per_class_accuracy": {"zero": 0.5, "one": 1.0, "two": None},
                      "confusion_matrix": [[1, 1, 0], [0, 2, 0], [0, 0, 0]]}


def test_study_report_writes_the_results_table_figures_and_run(tmp_path):
    from keras_latent.evaluation.report import write_study_report

    results = {20: {"a": 0.5, "b": float("nan")}}
    write_study_report(tmp_path, "study", results, title="A study", header=["n", "a", "b"],
                       rows=[[20, "50.00 %", "nan"]], figures=[("f.png", "Figure", "What it shows.")],
                       metadata={"command": "python x.py", "device": "cpu", "cpu_cores": 2,
                                 "load_average_1m": 0.5, "precision": "float32", "seed": 3,
                                 "git_commit": None, "versions": {"keras": "3"},
                                 "phases_s": {}})
    assert json.loads((tmp_path / "study.json").read_text().replace("NaN", "null")) == {
        "20": {"a": 0.5, "b": None}}
    report = (tmp_path / "report.md").read_text()
    assert report.startswith("# A study\n")
    assert "| n | a | b |" in report and "| 20 | 50.00 % | nan |" in report
    assert "![Figure](f.png)" in report and "*What it shows.*" in report
    assert "- command: `python x.py`" in report and "seed: 3" in report
    assert not list(tmp_path.glob("*.tmp*"))
