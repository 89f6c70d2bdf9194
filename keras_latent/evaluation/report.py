"""``evaluate_model``: one call that judges a trained model and leaves a self-contained report.

The output folder holds ``metrics.json`` (every number, machine-readable, what ``compare_runs``
reads), the PNGs, ``latent_tsne.npz`` (2-D t-SNE coordinates, so a comparison never re-runs
t-SNE) and ``report.md`` that shows it all to a person. Every model kind gets the same
accuracy columns: a classifier through its own head, every other kind through a seeded linear
probe (logistic regression on its frozen latent codes), so runs of different paradigms line up
in one table.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from keras_latent.evaluation import metrics, plots
from keras_latent.io import save_npz_atomic, write_text_atomic  # noqa: F401 - re-exported

__all__ = ["model_kind", "check_input_shape", "evaluate_model", "write_text_atomic"]

SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------- model kinds


def model_kind(model) -> str:
    """``"simclr"``, ``"autoencoder"``, ``"classifier"`` or ``"encoder"``, told by attributes.

    ``projection_head`` is looked at first: a contrastive + denoising SimCLR hybrid also has an
    encoder and a decoder, but it is a SimCLR model (its reconstructions are still scored).
    """
    def has(name):
        return getattr(model, name, None) is not None

    if has("projection_head"):
        return "simclr"
    if has("encoder") and has("decoder"):
        return "autoencoder"
    if has("head"):
        return "classifier"
    return "encoder"


def _input_shape(model):
    for candidate in (getattr(model, "encoder", None), model):
        try:
            shape = candidate.input_shape
        except (AttributeError, ValueError, RuntimeError):
            continue
        if isinstance(shape, list):
            shape = shape[0]
        return tuple(shape[1:])
    return None


def check_input_shape(model, image_shape) -> None:
    """Raise a ValueError naming both shapes when the data cannot feed the model."""
    expected = _input_shape(model)
    image_shape = tuple(image_shape)
    if expected is None:
        return
    if len(expected) != len(image_shape) or any(
        want is not None and want != got for want, got in zip(expected, image_shape)
    ):
        raise ValueError(
            f"the model expects images of shape {expected} but the dataset's images are "
            f"{image_shape}; evaluate the model on the dataset it was trained on."
        )


# --------------------------------------------------------------------------- file helpers


def _finite(value, name):
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} is {value}: the model produced non-finite outputs.")
    return value


# --------------------------------------------------------------------------- pieces


def _split_arrays(splits):
    arrays = {}
    for name in SPLITS:
        split = getattr(splits, name, None)
        if split is None:
            raise ValueError(f"splits has no {name!r} split; pass a DatasetSplits from "
                             "keras_latent.data.load_dataset().")
        arrays[name] = (np.asarray(split.images), np.asarray(split.labels).reshape(-1))
    for name in ("train", "test"):
        if len(arrays[name][1]) < 2:
            raise ValueError(f"the {name} split has {len(arrays[name][1])} examples; need >= 2.")
    return arrays


def _reconstruction_mae(decoder, images, codes, batch_size, chunk=4096):
    """MAE over a whole split, decoded a chunk at a time so no float copy of it is kept."""
    total = 0.0
    for start in range(0, len(images), chunk):
        decoded = metrics.predict_in_batches(decoder, codes[start:start + chunk], batch_size)
        original = metrics.to_unit_float(images[start:start + chunk])
        if decoded.shape != original.shape:
            raise ValueError(
                f"the decoder outputs {decoded.shape[1:]} but the images are "
                f"{original.shape[1:]}; the decoder does not mirror this dataset."
            )
        total += float(np.abs(original - decoded).sum())
    return total / float(np.prod(images.shape))


def _silhouette_or_none(codes, labels, seed):
    """None when the test split is too small or has one class (silhouette is undefined)."""
    distinct = len(np.unique(labels))
    if not 2 <= distinct < len(labels):
        return None
    return _finite(metrics.silhouette(codes, labels, seed=seed), "silhouette")


def _interpolation_pair(labels, rng):
    first = int(rng.integers(len(labels)))
    others = np.flatnonzero(labels != labels[first])
    second = int(rng.choice(others)) if len(others) else (first + 1) % len(labels)
    return first, second


def _head_kind(head) -> str:
    """"linear" for one Dense layer, else "MLP": tables must say which probe gave the accuracy,
    since an MLP probe on the same codes scores higher than a linear one."""
    def dense_count(model):
        return sum(dense_count(layer) if isinstance(layer, keras.Model)
                   else isinstance(layer, keras.layers.Dense) for layer in model.layers)

    return "linear" if dense_count(head) <= 1 else "MLP"


def _head_logits(head_model, model, codes, images, batch_size):
    """Logits of ``head_model`` for ``images``: from the already computed ``codes`` through
    its head when it shares ``model``'s encoder (half the work on a CIFAR-10 run), else
    through the whole classifier."""
    encoder = getattr(model, "encoder", model)
    head = getattr(head_model, "head", None)
    if head is not None and getattr(head_model, "encoder", None) is encoder:
        return metrics.predict_in_batches(head, codes, batch_size=max(batch_size, 1024))
    return metrics.predict_in_batches(head_model, images, batch_size=batch_size)


def _flip_tta_accuracy(head_model, model, codes, images, labels, batch_size):
    """Accuracy of the logits averaged over each image and its left-right mirror."""
    mirrored = np.ascontiguousarray(images[:, :, ::-1])
    mirrored_codes = metrics.encode(model, mirrored, batch_size=batch_size)
    logits = (_head_logits(head_model, model, codes, images, batch_size)
              + _head_logits(head_model, model, mirrored_codes, mirrored, batch_size))
    return _finite(metrics.accuracy(labels, logits), "flip-TTA accuracy")


def _format(value):
    return "—" if value is None else f"{value:.4f}"


def _markdown(result):
    accuracy, mae = result["accuracy"], result.get("mae")
    counts = result["num_examples"]
    lines = [
        f"# Evaluation: {result['method']} on {result['dataset']}",
        "",
        f"Model kind: **{result['kind']}**, latent dimension {result['latent_dim']}, "
        f"examples train / val / test: {counts['train']} / {counts['val']} / {counts['test']}, "
        f"seed {result['seed']}.",
        "",
        "## Metrics",
        "",
        "| metric | train | val | test |",
        "| --- | --- | --- | --- |",
        f"| accuracy ({result['accuracy_source']}) | "
        + " | ".join(_format(accuracy[s]) for s in SPLITS) + " |",
    ]
    if result.get("accuracy_flip_tta") is not None:
        lines.append(f"| accuracy with flip test-time augmentation ({result['accuracy_source']}) | "
                     + " | ".join(_format(result["accuracy_flip_tta"][s]) for s in SPLITS) + " |")
    if mae is not None:
        lines.append("| reconstruction MAE | " + " | ".join(_format(mae[s]) for s in SPLITS) + " |")
    lines += [
        "",
        "| latent-code metric (test split) | value |",
        "| --- | --- |",
        f"| k-NN accuracy (k={result['knn_k']}, cosine, fitted on train codes) | "
        f"{_format(result['knn_accuracy'])} |",
        f"| linear-probe accuracy (logistic regression on standardised train codes) | "
        f"{_format(result['linear_probe_accuracy'])} |",
        f"| silhouette (cosine, by class) | {_format(result['silhouette'])} |",
        "",
        "## Test accuracy per class",
        "",
        "| class | accuracy |",
        "| --- | --- |",
    ]
    lines += [f"| {name} | {_format(value)} |" for name, value in
              result["per_class_accuracy"].items()]
    run = result.get("run")
    if run:
        versions = ", ".join(f"{name} {value}" for name, value in run["versions"].items() if value)
        phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in run["phases_s"].items())
        lines += ["", "## Run", "",
                  f"- command: `{run['command']}`",
                  f"- device: {run['device']} ({run['cpu_cores']} cores, load average "
                  f"{run['load_average_1m']} at the end); precision: {run['precision']}",
                  f"- seed: {run['seed']}; commit: {run['git_commit'] or 'not a git checkout'}",
                  f"- versions: {versions}",
                  f"- wall-clock: {phases}"]
    lines += ["", "## Plots", ""]
    for name, filename in result["plots"].items():
        title = plots.TITLES[name]
        lines += [f"### {title}", "", f"![{title}]({filename})", "",
                  f"*{plots.CAPTIONS[name]}*", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------- the report


def evaluate_model(model, splits, output_dir, *, method=None, batch_size=256, tsne_sample=2000,
                   seed=0, probe_epochs=200, knn_k=20, history=None, num_images=8,
                   classifier=None, flip_tta=False, metadata=None, verbose=True) -> dict:
    """Score ``model`` on every split of ``splits`` and write the report into ``output_dir``.

    Args:
        model: an Autoencoder, Classifier, SimCLR model or plain encoder (see ``model_kind``).
        splits: a ``DatasetSplits`` (``train``/``val``/``test`` with uint8 images, int labels,
            ``name`` and ``class_names``).
        output_dir: folder for ``metrics.json``, ``report.md``, PNGs and ``latent_tsne.npz``.
        method: the row name in comparisons (default: the model kind).
        batch_size: inference batch size.
        tsne_sample: test examples in the t-SNE plots (t-SNE is the slow step).
        seed: seeds the probe, the t-SNE sample, the plotted images.
        probe_epochs: iteration budget (full passes over the train codes) of the linear probe.
        knn_k: neighbours in the k-NN accuracy.
        history: a Keras History, its ``.history`` dict or a CSVLogger file -> training curves
            (none for a history of no epochs; a file without curves is refused up front).
        num_images: images in the reconstruction plot.
        classifier: a trained frozen-encoder probe (``Classifier``) of this model's encoder; its
            head then gives the accuracies (the paradigm's probe, as the assignment reports)
            instead of the built-in logistic-regression probe.
        flip_tta: also report the head's val/test accuracy with flip test-time augmentation
            (logits averaged over each image and its mirror image), labelled as such.
        metadata: ``evaluation.metadata.run_metadata()`` of the run, stored as ``"run"`` with
            this evaluation's own time added to its ``phases_s``.
        verbose: print a line before each slow step.

    Returns:
        The dict written to ``metrics.json``.

    Raises:
        ValueError: data that does not fit the model, an encoder whose output is not
            ``(batch, latent_dim)``, a classifier head of the wrong width, non-finite outputs.
    """
    started = time.perf_counter()

    def say(message):
        if verbose:
            print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    kind = model_kind(model)
    # Before the work: a history file that cannot be plotted fails now, naming it.
    curves = plots.history_curves(history) if history is not None else {}
    arrays = _split_arrays(splits)
    image_shape = arrays["train"][0].shape[1:]
    check_input_shape(model, image_shape)
    class_names = [str(name) for name in splits.class_names]
    num_classes = len(class_names)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    say(f"Encoding {sum(len(y) for _, y in arrays.values())} images ({kind}) ...")
    codes = {}
    for name, (images, _) in arrays.items():
        if len(images) == 0:
            codes[name] = None
            continue
        codes[name] = metrics.encode(model, images, batch_size=batch_size)
        if codes[name].ndim != 2:
            raise ValueError(
                f"the encoder outputs shape {codes[name].shape[1:]} per image; latent codes "
                "must be vectors (batch, latent_dim). Pass an encoder ending in a Dense layer."
            )
        if not np.all(np.isfinite(codes[name])):
            raise ValueError(f"the {name} latent codes contain NaN or inf: the model diverged.")
    train_z, train_y = codes["train"], arrays["train"][1]
    test_z, test_y = codes["test"], arrays["test"][1]

    # -- accuracy: the model's own head, or a linear probe on frozen codes
    say(f"Fitting a linear probe on {len(train_y)} codes of dimension {train_z.shape[1]} ...")
    probe = metrics.fit_linear_probe(train_z, train_y, seed=seed, max_iter=probe_epochs)
    head_model = classifier if classifier is not None else (model if kind == "classifier" else None)
    if head_model is not None:
        accuracy_source = ("classifier head" if classifier is None
                           else f"frozen-encoder {_head_kind(classifier.head)} probe")

        def predict(name):
            logits = _head_logits(head_model, model, codes[name], arrays[name][0], batch_size)
            if logits.ndim != 2 or logits.shape[1] != num_classes:
                raise ValueError(
                    f"the classifier outputs shape {logits.shape[1:]} but {splits.name} has "
                    f"{num_classes} classes; evaluate it on the dataset it was trained on."
                )
            return metrics.to_class_ids(logits)
    else:
        accuracy_source = "linear probe on frozen codes"

        def predict(name):
            return probe.predict(codes[name])

    predictions = {name: predict(name) for name in SPLITS if codes[name] is not None}
    accuracy = {
        name: (_finite(metrics.accuracy(arrays[name][1], predictions[name]), f"{name} accuracy")
               if name in predictions else None)
        for name in SPLITS
    }
    tta_accuracy = None
    if flip_tta and head_model is not None:
        say("Flip test-time augmentation on the val and test splits ...")
        tta_accuracy = {name: _flip_tta_accuracy(head_model, model, codes[name], *arrays[name],
                                                 batch_size)
                        if codes[name] is not None and name != "train" else None
                        for name in SPLITS}
    confusion = metrics.confusion_matrix(test_y, predictions["test"], num_classes)
    per_class = metrics.per_class_accuracy(test_y, predictions["test"], num_classes)

    # -- separability of the codes themselves
    say(f"k-NN (k={knn_k}) and silhouette on {len(test_y)} test codes ...")
    result = {
        "kind": kind,
        "method": method or kind,
        "dataset": str(splits.name),
        "class_names": class_names,
        "num_examples": {name: int(len(arrays[name][1])) for name in SPLITS},
        "latent_dim": int(train_z.shape[1]),
        "seed": int(seed),
        "accuracy_source": accuracy_source,
        "accuracy": accuracy,
        **({"accuracy_flip_tta": tta_accuracy} if tta_accuracy is not None else {}),
        "knn_k": int(knn_k),
        "knn_accuracy": _finite(
            metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=knn_k), "k-NN accuracy"),
        "linear_probe_accuracy": _finite(np.mean(probe.predict(test_z) == test_y),
                                         "linear-probe accuracy"),
        "silhouette": _silhouette_or_none(test_z, test_y, seed),
        "per_class_accuracy": {
            name: (None if np.isnan(value) else float(value))
            for name, value in zip(class_names, per_class)
        },
        "confusion_matrix": confusion.astype(int).tolist(),
    }
    plot_files = {}

    # -- reconstructions (any model with a decoder)
    decoder = getattr(model, "decoder", None)
    if decoder is not None and getattr(model, "encoder", None) is not None:
        say("Decoding every split for the reconstruction error ...")
        result["mae"] = {
            name: (_finite(_reconstruction_mae(decoder, arrays[name][0], codes[name], batch_size),
                           f"{name} MAE") if codes[name] is not None else None)
            for name in SPLITS
        }
        test_images = arrays["test"][0]
        chosen = np.sort(rng.choice(len(test_images), min(num_images, len(test_images)), False))
        decoded = metrics.predict_in_batches(decoder, test_z[chosen], batch_size)
        plots.plot_reconstructions(test_images[chosen], decoded, n=len(chosen), seed=seed,
                                   path=output_dir / "reconstructions.png")
        plot_files["reconstructions"] = "reconstructions.png"
        first, second = _interpolation_pair(test_y, rng)
        strip = plots.interpolate(model, test_images[first], test_images[second], steps=10)
        plots.plot_interpolation(strip, path=output_dir / "interpolation.png")
        plot_files["interpolation"] = "interpolation.png"

    # -- t-SNE (kept as coordinates for compare_runs)
    sample = min(int(tsne_sample), len(test_y))
    say(f"t-SNE on {sample} points (pixel space, then latent space) ...")
    embeddings = plots.tsne_embeddings(arrays["test"][0], test_z, test_y, sample=sample, seed=seed)
    save_npz_atomic(output_dir / "latent_tsne.npz", latent_2d=embeddings.latent_2d,
                     image_2d=embeddings.image_2d, labels=embeddings.labels,
                     indices=embeddings.indices)
    result["latent_tsne"] = "latent_tsne.npz"
    plots.plot_tsne(None, None, None, class_names, embeddings=embeddings,
                    path=output_dir / "tsne.png")
    plot_files["tsne"] = "tsne.png"

    plots.plot_confusion_matrix(confusion, class_names, path=output_dir / "confusion_matrix.png")
    plot_files["confusion_matrix"] = "confusion_matrix.png"
    if curves:  # a run resumed after its last epoch trained none in this process
        plots.plot_history(curves, path=output_dir / "history.png")
        plot_files["history"] = "history.png"
    result["plots"] = plot_files
    if metadata is not None:
        result["run"] = {**metadata, "phases_s": {
            **metadata.get("phases_s", {}), "evaluation": round(time.perf_counter() - started, 1)}}

    write_text_atomic(output_dir / "metrics.json",
                      json.dumps(result, indent=2, allow_nan=False) + "\n")
    write_text_atomic(output_dir / "report.md", _markdown(result))
    say(f"Report written to {output_dir / 'report.md'}")
    return result
