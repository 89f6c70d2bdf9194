"""``evaluate_model``: one call that judges a trained model and leaves a self-contained report.

The output folder holds ``metrics.json`` (every number, machine-readable, what ``compare_runs``
reads), the PNGs, ``latent_tsne.npz`` (2-D t-SNE coordinates, so a comparison never re-runs
t-SNE) and ``report.md`` that shows it all to a person. Every model kind gets the same
accuracy columns: a classifier through its own head, every other kind through a seeded linear
probe (logistic regression on its frozen latent codes), so runs of different paradigms line up
in one table.

``evaluate_model`` is a short pipeline of steps, each a function of its inputs that can be
tested alone: encode the splits, pick the accuracy source and score it, score the codes,
score the reconstructions, write the figures, write ``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np

from keras_latent.evaluation import collapse, metrics, plots
from keras_latent.io import save_npz_atomic, write_text_atomic  # noqa: F401 - re-exported

__all__ = ["model_kind", "check_input_shape", "check_encoder", "evaluate_model",
           "write_study_report", "write_text_atomic"]

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


# --------------------------------------------------------------------------- checks


def _finite(value, name):
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} is {value}: the model produced non-finite outputs.")
    return value


# --------------------------------------------------------------------------- step: encode


class EncodedSplits(NamedTuple):
    """Images, labels and latent codes of each split, by split name (codes None when empty)."""

    images: dict
    labels: dict
    codes: dict

    @property
    def latent_dim(self) -> int:
        return int(self.codes["train"].shape[1])


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


def check_encoder(model) -> None:
    """Raise a ValueError unless the model's encoder takes one image input and outputs vectors:
    said before any folder is made or any image encoded."""
    encoder = getattr(model, "encoder", None) or model
    inputs = getattr(encoder, "inputs", None)
    if isinstance(inputs, (list, tuple)) and len(inputs) > 1:
        raise ValueError(
            f"the model takes {len(inputs)} inputs; evaluation feeds one batch of images, so "
            "pass a single-input encoder, autoencoder, classifier or SimCLR model.")
    try:
        shape = encoder.output_shape
    except (AttributeError, ValueError, RuntimeError):
        return  # a subclassed model not yet built: the codes are checked once encoded
    if isinstance(shape, tuple) and len(shape) != 2:
        raise ValueError(
            f"the encoder outputs shape {shape[1:]} per image; latent codes must be vectors "
            "(batch, latent_dim). Pass an encoder ending in a Dense layer.")


def _checked_inputs(model, splits, history):
    """``(training curves, split arrays)``, refused before any slow step: a history file that
    cannot be plotted, a missing or tiny split, images the model cannot take, a model with
    several inputs or image-shaped codes."""
    curves = plots.history_curves(history) if history is not None else {}
    arrays = _split_arrays(splits)
    check_encoder(model)
    check_input_shape(model, arrays["train"][0].shape[1:])
    return curves, arrays


def _reusable(codes, arrays):
    """The given ``codes`` (by split name) that hold one code per image of their split."""
    return {name: np.asarray(codes[name]) for name, (images, _) in arrays.items()
            if codes and codes.get(name) is not None and len(codes[name]) == len(images)}


def _encode_splits(model, arrays, batch_size, known=None) -> EncodedSplits:
    """Every split's codes (``known`` ones reused), refused unless they are finite vectors:
    every later step needs both."""
    codes = {}
    for name, (images, _) in arrays.items():
        if len(images) == 0:
            codes[name] = None
            continue
        codes[name] = (known or {}).get(name)
        if codes[name] is None:
            codes[name] = metrics.encode(model, images, batch_size=batch_size)
        if codes[name].ndim != 2:
            raise ValueError(
                f"the encoder outputs shape {codes[name].shape[1:]} per image; latent codes "
                "must be vectors (batch, latent_dim). Pass an encoder ending in a Dense layer."
            )
        if not np.all(np.isfinite(codes[name])):
            raise ValueError(f"the {name} latent codes contain NaN or inf: the model diverged.")
    return EncodedSplits({name: images for name, (images, _) in arrays.items()},
                         {name: labels for name, (_, labels) in arrays.items()}, codes)


def _data_facts(splits, encoded, seed) -> dict:
    """What was evaluated: the dataset, its classes and split sizes, the code width, the seed."""
    return {
        "dataset": str(splits.name),
        "class_names": [str(name) for name in splits.class_names],
        "num_examples": {name: int(len(encoded.labels[name])) for name in SPLITS},
        "latent_dim": encoded.latent_dim,
        "seed": int(seed),
    }


# --------------------------------------------------------------------------- step: accuracy


def _pick_accuracy_source(model, kind, classifier):
    """``(head model, label)``: a given probe, else a classifier's own head, else no head
    (``None``: the seeded linear probe on frozen codes gives the accuracies)."""
    if classifier is not None:
        return classifier, f"frozen-encoder {_head_kind(classifier.head)} probe"
    if kind == "classifier":
        return model, "classifier head"
    return None, "linear probe on frozen codes"


def _head_kind(head) -> str:
    """"linear" for one Dense layer, else "MLP": tables must say which probe gave the accuracy,
    since an MLP probe on the same codes scores higher than a linear one."""
    def dense_count(model):
        return sum(dense_count(layer) if isinstance(layer, keras.Model)
                   else isinstance(layer, keras.layers.Dense) for layer in model.layers)

    members = getattr(head, "members", None)  # a HeadEnsemble: "3-head MLP", which scores
    if members:                                # higher than one of its heads would
        return f"{len(members)}-head {_head_kind(members[0])}"
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


def _predict_classes(encoded, probe, head_model, model, splits, batch_size) -> dict:
    """Class ids of every non-empty split: ``head_model``'s when there is one, else the probe's."""
    num_classes = len(splits.class_names)

    def predict(name):
        if head_model is None:
            return probe.predict(encoded.codes[name])
        logits = _head_logits(head_model, model, encoded.codes[name], encoded.images[name],
                              batch_size)
        if logits.ndim != 2 or logits.shape[1] != num_classes:
            raise ValueError(
                f"the classifier outputs shape {logits.shape[1:]} but {splits.name} has "
                f"{num_classes} classes; evaluate it on the dataset it was trained on."
            )
        return metrics.to_class_ids(logits)

    return {name: predict(name) for name in SPLITS if encoded.codes[name] is not None}


def _split_accuracies(encoded, predictions) -> dict:
    """Accuracy per split (None for an empty one)."""
    return {
        name: (_finite(metrics.accuracy(encoded.labels[name], predictions[name]),
                       f"{name} accuracy") if name in predictions else None)
        for name in SPLITS
    }


def _flip_tta_accuracies(head_model, model, encoded, batch_size) -> dict:
    """Val and test accuracy of the logits averaged over each image and its left-right mirror
    (train: None; the head was fitted on it)."""
    def accuracy(name):
        images, labels, codes = (encoded.images[name], encoded.labels[name],
                                 encoded.codes[name])
        mirrored = np.ascontiguousarray(images[:, :, ::-1])
        mirrored_codes = metrics.encode(model, mirrored, batch_size=batch_size)
        logits = (_head_logits(head_model, model, codes, images, batch_size)
                  + _head_logits(head_model, model, mirrored_codes, mirrored, batch_size))
        return _finite(metrics.accuracy(labels, logits), "flip-TTA accuracy")

    return {name: accuracy(name) if encoded.codes[name] is not None and name != "train"
            else None for name in SPLITS}


def _class_scores(labels, predictions, class_names) -> dict:
    """Per-class accuracy and the confusion matrix of the test predictions."""
    per_class = metrics.per_class_accuracy(labels, predictions, len(class_names))
    confusion = metrics.confusion_matrix(labels, predictions, len(class_names))
    return {
        "per_class_accuracy": {name: (None if np.isnan(value) else float(value))
                               for name, value in zip(class_names, per_class)},
        "confusion_matrix": confusion.astype(int).tolist(),
    }


# --------------------------------------------------------------------------- step: codes


#: How ``knn200_weighted_accuracy`` is measured, as reports name it.
WEIGHTED_KNN_PROTOCOL = (f"k={metrics.WEIGHTED_KNN_K}, cosine, votes weighted by "
                         f"exp(similarity / {metrics.WEIGHTED_KNN_TEMPERATURE})")


def _code_scores(encoded, probe, knn_k, seed) -> dict:
    """How well the test codes alone separate the classes: k-NN (the k=``knn_k`` majority vote
    and the SSL benchmarks' weighted k=200), linear probe, silhouette."""
    train_z, train_y = encoded.codes["train"], encoded.labels["train"]
    test_z, test_y = encoded.codes["test"], encoded.labels["test"]
    return {
        "knn_k": int(knn_k),
        "knn_accuracy": _finite(
            metrics.knn_accuracy(train_z, train_y, test_z, test_y, k=knn_k), "k-NN accuracy"),
        "knn200_weighted_accuracy": _finite(metrics.knn_accuracy(
            train_z, train_y, test_z, test_y, k=metrics.WEIGHTED_KNN_K,
            temperature=metrics.WEIGHTED_KNN_TEMPERATURE), "weighted k-NN accuracy"),
        "knn_weighted_protocol": WEIGHTED_KNN_PROTOCOL,
        "linear_probe_accuracy": _finite(np.mean(probe.predict(test_z) == test_y),
                                         "linear-probe accuracy"),
        "silhouette": _silhouette_or_none(test_z, test_y, seed),
    }


def _silhouette_or_none(codes, labels, seed):
    """None when the test split is too small or has one class (silhouette is undefined)."""
    distinct = len(np.unique(labels))
    if not 2 <= distinct < len(labels):
        return None
    return _finite(metrics.silhouette(codes, labels, seed=seed), "silhouette")


def _pair_scores(model, encoded, dataset, *, seed, batch_size, sample=2000) -> dict:
    """Alignment and uniformity (Wang & Isola) of the codes of two views of a seeded sample of
    test images (held out from training), each view drawn with the dataset's "simclr"
    augmentation preset."""
    from keras_latent.data import build_augmentation

    images = encoded.images["test"]
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), min(int(sample), len(images)), replace=False))
    augmenter = build_augmentation(dataset, "simclr", seed=seed)
    first, second = (metrics.encode(model, _augmented(augmenter, images[chosen], view, seed),
                                    batch_size=batch_size) for view in (1, 2))
    return {
        "alignment": _finite(collapse.alignment(first, second), "alignment"),
        "uniformity": _finite((collapse.uniformity(first) + collapse.uniformity(second)) / 2,
                              "uniformity"),
        "pairs": int(len(chosen)),
    }


def _augmented(augmenter, images, view, seed, chunk=256) -> np.ndarray:
    """One augmented view of ``images`` in [0, 1], a seeded chunk at a time."""
    views = []
    for start in range(0, len(images), chunk):
        batch = metrics.to_unit_float(images[start:start + chunk])
        batch_seed = np.array([seed, view * 1_000_003 + start], dtype="int64")
        views.append(keras.ops.convert_to_numpy(augmenter(batch, training=True, seed=batch_seed)))
    return np.concatenate(views)


# --------------------------------------------------------------------------- step: reconstruction


def _decoder(model):
    """The decoder whose reconstructions are scored: any model with an encoder and a decoder."""
    if getattr(model, "encoder", None) is None:
        return None
    return getattr(model, "decoder", None)


def _reconstruction_maes(decoder, encoded, batch_size) -> dict:
    """Reconstruction MAE per split (None for an empty one)."""
    return {
        name: (_finite(_reconstruction_mae(decoder, encoded.images[name], encoded.codes[name],
                                           batch_size), f"{name} MAE")
               if encoded.codes[name] is not None else None)
        for name in SPLITS
    }


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


# --------------------------------------------------------------------------- step: figures


def _write_decoder_figures(model, encoded, output_dir, *, num_images, seed, batch_size) -> dict:
    """Reconstructions of a seeded sample of test images and one decoded interpolation."""
    rng = np.random.default_rng(seed)
    test_images, test_codes = encoded.images["test"], encoded.codes["test"]
    chosen = np.sort(rng.choice(len(test_images), min(num_images, len(test_images)), False))
    decoded = metrics.predict_in_batches(model.decoder, test_codes[chosen], batch_size)
    plots.plot_reconstructions(test_images[chosen], decoded, n=len(chosen), seed=seed,
                               path=output_dir / "reconstructions.png")
    first, second = _interpolation_pair(encoded.labels["test"], rng)
    strip = plots.interpolate(model, test_images[first], test_images[second], steps=10)
    plots.plot_interpolation(strip, path=output_dir / "interpolation.png")
    return {"reconstructions": "reconstructions.png", "interpolation": "interpolation.png"}


def _interpolation_pair(labels, rng):
    first = int(rng.integers(len(labels)))
    others = np.flatnonzero(labels != labels[first])
    second = int(rng.choice(others)) if len(others) else (first + 1) % len(labels)
    return first, second


def _write_tsne(encoded, class_names, output_dir, *, sample, seed) -> dict:
    """t-SNE of a seeded test sample: coordinates kept in ``latent_tsne.npz`` (so
    ``compare_runs`` never re-runs t-SNE) and drawn in ``tsne.png``."""
    embeddings = metrics.tsne_embeddings(encoded.images["test"], encoded.codes["test"],
                                         encoded.labels["test"], sample=sample, seed=seed)
    save_npz_atomic(output_dir / "latent_tsne.npz", latent_2d=embeddings.latent_2d,
                    image_2d=embeddings.image_2d, labels=embeddings.labels,
                    indices=embeddings.indices)
    plots.plot_tsne(None, None, None, class_names, embeddings=embeddings,
                    path=output_dir / "tsne.png")
    return {"tsne": "tsne.png"}


def _write_figures(model, encoded, result, curves, output_dir, *, tsne_sample, num_images, seed,
                   batch_size, say) -> dict:
    """Every figure of the report, ``{name: file name}`` in the order the report shows them.

    Ten parameters: the figures need the model, its codes, the scores and the curves, and each
    knob (sample sizes, seed, batch size) is ``evaluate_model``'s, passed on unchanged.
    """
    files = {}
    if _decoder(model) is not None:
        files.update(_write_decoder_figures(model, encoded, output_dir, num_images=num_images,
                                            seed=seed, batch_size=batch_size))
    sample = min(int(tsne_sample), len(encoded.labels["test"]))
    say(f"t-SNE on {sample} points (pixel space, then latent space) ...")
    files.update(_write_tsne(encoded, result["class_names"], output_dir, sample=sample,
                             seed=seed))
    plots.plot_confusion_matrix(result["confusion_matrix"], result["class_names"],
                                path=output_dir / "confusion_matrix.png")
    files["confusion_matrix"] = "confusion_matrix.png"
    plots.plot_spectrum(result["collapse"]["singular_values"],
                        result["collapse"]["effective_rank"], path=output_dir / "spectrum.png")
    files["spectrum"] = "spectrum.png"
    if curves:  # a run resumed after its last epoch trained none in this process
        plots.plot_history(curves, path=output_dir / "history.png")
        files["history"] = "history.png"
    return files


# --------------------------------------------------------------------------- step: report


def _format(value):
    return "—" if value is None else f"{value:.4f}"


def _split_row(label, values):
    return f"| {label} | " + " | ".join(_format(values[name]) for name in SPLITS) + " |"


def _metrics_section(result):
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
        _split_row(f"accuracy ({result['accuracy_source']})", result["accuracy"]),
    ]
    if result.get("accuracy_flip_tta") is not None:
        lines.append(_split_row("accuracy with flip test-time augmentation "
                                f"({result['accuracy_source']})", result["accuracy_flip_tta"]))
    if result.get("mae") is not None:
        lines.append(_split_row("reconstruction MAE", result["mae"]))
    return lines + [
        "",
        "| latent-code metric (test split) | value |",
        "| --- | --- |",
        f"| k-NN accuracy (k={result['knn_k']} majority vote, cosine, fitted on train codes) | "
        f"{_format(result['knn_accuracy'])} |",
        f"| k-NN accuracy ({result['knn_weighted_protocol']}; the SSL benchmarks' protocol) | "
        f"{_format(result['knn200_weighted_accuracy'])} |",
        f"| linear-probe accuracy (logistic regression on standardised train codes) | "
        f"{_format(result['linear_probe_accuracy'])} |",
        f"| silhouette (cosine, by class) | {_format(result['silhouette'])} |",
        "",
    ] + _collapse_lines(result) + [
        "## Test accuracy per class",
        "",
        "| class | accuracy |",
        "| --- | --- |",
    ] + [f"| {name} | {_format(value)} |" for name, value in
         result["per_class_accuracy"].items()]


def _collapse_lines(result):
    """The collapse table: how many directions the test codes use, and for a contrastive model
    how its positive pairs sit on the sphere."""
    scores = result["collapse"]
    lines = [
        "## Dimensional collapse (test codes)", "",
        "| diagnostic | value |", "| --- | --- |",
        f"| effective rank (exp of the entropy of the normalised singular values; at most "
        f"{result['latent_dim']}) | {scores['effective_rank']:.2f} |",
    ] + [f"| share of the variance in the top {n} component{'s' * (n != '1')} | "
         f"{_format(share)} |" for n, share in scores["variance_share_top"].items()] + [
        f"| std of each dimension of the L2-normalised code: mean / min (spread evenly: "
        f"{scores['normalised_std_uniform']:.4f}) | {scores['normalised_std_mean']:.4f} / "
        f"{scores['normalised_std_min']:.4f} |",
    ]
    pairs = result.get("pairs")
    if pairs is not None:
        lines += [
            f"| alignment (mean squared distance of the normalised codes of two augmented views, "
            f"{pairs['pairs']} test images; lower is better) | {pairs['alignment']:.4f} |",
            f"| uniformity (log E exp(-2 squared distance) over pairs of images; lower is "
            f"better) | {pairs['uniformity']:.4f} |",
        ]
    return lines + [""]


def _run_section(run):
    if not run:
        return []
    versions = ", ".join(f"{name} {value}" for name, value in run["versions"].items() if value)
    phases = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in run["phases_s"].items())
    return ["", "## Run", "",
            f"- command: `{run['command']}`",
            f"- backend: {run.get('backend', 'tensorflow')}; device: {run['device']} "
            f"({run['cpu_cores']} cores, load average {run['load_average_1m']} at the end); "
            f"precision: {run['precision']}",
            f"- seed: {run['seed']}; commit: {run['git_commit'] or 'not a git checkout'}",
            f"- versions: {versions}"] + ([f"- wall-clock: {phases}"] if phases else [])


def _plots_section(plot_files):
    lines = ["", "## Plots", ""]
    for name, filename in plot_files.items():
        title = plots.TITLES[name]
        lines += [f"### {title}", "", f"![{title}]({filename})", "",
                  f"*{plots.CAPTIONS[name]}*", ""]
    return lines


def _markdown(result):
    return "\n".join(_metrics_section(result) + _run_section(result.get("run"))
                     + _plots_section(result["plots"]))


def _run_record(metadata, evaluation_seconds) -> dict:
    """The run's metadata with this evaluation's wall-clock time added to its phases."""
    return {**metadata, "phases_s": {**metadata.get("phases_s", {}),
                                     "evaluation": round(evaluation_seconds, 1)}}


def _write_report(result, output_dir) -> None:
    """``metrics.json`` (every number, what ``compare_runs`` reads) and ``report.md``."""
    write_text_atomic(output_dir / "metrics.json",
                      json.dumps(result, indent=2, allow_nan=False) + "\n")
    write_text_atomic(output_dir / "report.md", _markdown(result))


def write_study_report(output_dir, name, results, *, title, header, rows, figures=(),
                       metadata=None) -> None:
    """The report of a recipe that studies one question across models (few-shot probes, the
    decoder probe, the latent-size sweep): ``<name>.json`` (``results`` as they are) and
    ``report.md`` (``title``, a table of ``header`` and ``rows``, each ``(file, title, caption)``
    of ``figures``, and the run's ``metadata``), each written whole or not at all."""
    output_dir = Path(output_dir)
    write_text_atomic(output_dir / f"{name}.json",
                      json.dumps(results, indent=2) + "\n")  # a diverged model's NaN stays
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    for filename, figure_title, caption in figures:
        lines += ["", f"![{figure_title}]({filename})", "", f"*{caption}*"]
    lines += _run_section(metadata)
    write_text_atomic(output_dir / "report.md", "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- the pipeline


class _Progress:
    """Prints a timed line before each slow step when ``verbose``; also the evaluation's clock."""

    def __init__(self, verbose):
        self.verbose, self.started = verbose, time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def __call__(self, message):
        if self.verbose:
            print(f"[{self.elapsed():6.1f} s] {message}", flush=True)


def evaluate_model(model, splits, output_dir, *, method=None, batch_size=256, tsne_sample=2000,
                   seed=0, probe_epochs=200, knn_k=20, history=None, num_images=8,
                   classifier=None, flip_tta=False, metadata=None, codes=None,
                   verbose=True) -> dict:
    """Score ``model`` on every split of ``splits`` and write the report into ``output_dir``.

    The steps: encode the splits, score the accuracy (a head or the linear probe), score the
    codes, the reconstruction error, the figures, the files. Sixteen parameters because this is
    the one call recipes make; each knob belongs to one step and has a working default.

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
            head then gives the accuracies (the paradigm's probe, the figure the recipes report)
            instead of the built-in logistic-regression probe.
        flip_tta: also report the head's val/test accuracy with flip test-time augmentation
            (logits averaged over each image and its mirror image), labelled as such.
        metadata: ``evaluation.metadata.run_metadata()`` of the run, stored as ``"run"`` with
            this evaluation's own time added to its ``phases_s``.
        codes: codes of this model's encoder already computed, by split name (a probe's
            ``TrainingRun.codes``): reused for the splits whose sizes they match, not encoded
            again (about 20 s for CIFAR-10's training split on two CPU cores).
        verbose: print a line before each slow step.

    Returns:
        The dict written to ``metrics.json``.

    Raises:
        ValueError: data that does not fit the model, an encoder whose output is not
            ``(batch, latent_dim)``, a classifier head of the wrong width, non-finite outputs.
    """
    say = _Progress(verbose)
    kind = model_kind(model)
    curves, arrays = _checked_inputs(model, splits, history)
    reused = _reusable(codes, arrays)
    count = sum(len(y) for name, (_, y) in arrays.items() if name not in reused)
    say(f"Encoding {count} images ({kind})"
        + (f"; the {' and '.join(reused)} codes reused from the probe" if reused else "") + " ...")
    encoded = _encode_splits(model, arrays, batch_size, known=reused)
    output_dir = Path(output_dir)  # made only now: a model that cannot be judged leaves none
    output_dir.mkdir(parents=True, exist_ok=True)
    train_z, train_y = encoded.codes["train"], encoded.labels["train"]
    say(f"Fitting a linear probe on {len(train_y)} codes of dimension {encoded.latent_dim} ...")
    probe = metrics.fit_linear_probe(train_z, train_y, seed=seed, max_iter=probe_epochs)
    head_model, source = _pick_accuracy_source(model, kind, classifier)
    predictions = _predict_classes(encoded, probe, head_model, model, splits, batch_size)
    result = {"kind": kind, "method": method or kind, **_data_facts(splits, encoded, seed),
              "accuracy_source": source, "accuracy": _split_accuracies(encoded, predictions)}
    if flip_tta and head_model is not None:
        say("Flip test-time augmentation on the val and test splits ...")
        result["accuracy_flip_tta"] = _flip_tta_accuracies(head_model, model, encoded, batch_size)
    say(f"k-NN (k={knn_k}; k={metrics.WEIGHTED_KNN_K} weighted), silhouette and collapse on "
        f"{len(encoded.labels['test'])} test codes ...")
    result.update(_code_scores(encoded, probe, knn_k, seed))
    result["collapse"] = collapse.collapse_scores(encoded.codes["test"])
    if kind == "simclr":
        say("Alignment and uniformity of augmented test pairs ...")
        result["pairs"] = _pair_scores(model, encoded, result["dataset"], seed=seed,
                                       batch_size=batch_size)
    result.update(_class_scores(encoded.labels["test"], predictions["test"], result["class_names"]))
    if _decoder(model) is not None:
        say("Decoding every split for the reconstruction error ...")
        result["mae"] = _reconstruction_maes(model.decoder, encoded, batch_size)
    result["latent_tsne"] = "latent_tsne.npz"
    result["plots"] = _write_figures(model, encoded, result, curves, output_dir, seed=seed,
                                     tsne_sample=tsne_sample, num_images=num_images,
                                     batch_size=batch_size, say=say)
    if metadata is not None:
        result["run"] = _run_record(metadata, say.elapsed())
    _write_report(result, output_dir)
    say(f"Report written to {output_dir / 'report.md'}")
    return result
