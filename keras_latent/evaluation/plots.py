"""Figures that show a representation: reconstructions, interpolations, t-SNE, curves, confusion.

Every function builds a ``matplotlib.figure.Figure`` directly (Agg canvas, no pyplot), so plots
work headless, leak no global figure state in long runs, and are inspectable in tests. Pass
``path=`` to also save a PNG atomically. Each plot has a one-sentence caption in ``CAPTIONS``
that the report prints under it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# t-SNE is computed beside the other metrics; its names stay importable from here.
from keras_latent.evaluation.metrics import (  # noqa: F401
    TSNEEmbeddings,
    embed_tsne,
    predict_in_batches,
    to_unit_float,
    tsne_embeddings,
)
from keras_latent.evaluation.training_log import logged_history
from keras_latent.io import atomic_path

__all__ = [
    "CAPTIONS",
    "TITLES",
    "save_figure",
    "plot_reconstructions",
    "interpolate",
    "plot_interpolation",
    "TSNEEmbeddings",
    "embed_tsne",
    "tsne_embeddings",
    "plot_tsne",
    "plot_tsne_grid",
    "plot_history",
    "plot_confusion_matrix",
    "plot_sweep",
    "plot_spectrum",
]

TITLES = {
    "reconstructions": "Reconstructions",
    "interpolation": "Latent interpolation",
    "tsne": "t-SNE: pixel space vs latent space",
    "history": "Training curves",
    "confusion_matrix": "Confusion matrix",
    "tsne_grid": "t-SNE of the latent codes per run",
    "sweep": "Latent size sweep",
    "spectrum": "Singular-value spectrum of the latent codes",
}
CAPTIONS = {
    "reconstructions": "Random test images (top row) above the model's reconstructions of them "
                       "(bottom row).",
    "interpolation": "Decoded images along the straight line between the latent codes of two "
                     "test images, both ends included.",
    "tsne": "t-SNE of test images in pixel space (after PCA to 50 dimensions) and of their latent "
            "codes, coloured by class: tighter, separated clusters mean a more useful code.",
    "history": "Training curves per epoch, training split against validation split.",
    "confusion_matrix": "Confusion matrix on the test split (rows: true class, columns: "
                        "predicted class), normalised per true class.",
    "tsne_grid": "t-SNE of each run's latent codes for a seeded sample of test images, "
                 "coloured by class.",
    "sweep": "Test reconstruction MAE (left) and frozen-encoder probe accuracy (right) against "
             "the latent size (log scale), one curve per encoder width.",
    "spectrum": "Share of the test codes' variance along each principal direction (log scale), "
                "largest first: a collapsed code puts nearly all of it in a few directions and "
                "drops by orders of magnitude after them.",
}


# --------------------------------------------------------------------------- shared helpers


def _new_figure(width, height) -> Figure:
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure: Figure, path, dpi: int = 100) -> Path:
    """Write ``figure`` as a PNG atomically (see :func:`keras_latent.io.atomic_path`)."""
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, format="png", dpi=dpi)
    return Path(path)


def _finish(figure: Figure, path) -> Figure:
    if path is not None:
        save_figure(figure, path)
    return figure


def _show_image(ax, image):
    """Grey-scale for one channel, RGB for three; clipped to [0, 1] (decoders may overshoot)."""
    image = np.clip(to_unit_float(image), 0.0, 1.0)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])


def _check_images(images, name):
    images = np.asarray(images)
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] not in (1, 3)):
        raise ValueError(
            f"{name} must be images (N, H, W) or (N, H, W, 1|3), got shape {images.shape}."
        )
    return images


# --------------------------------------------------------------------------- autoencoders


def plot_reconstructions(originals, reconstructions, n: int = 5, seed: int = 0, *,
                         path=None) -> Figure:
    """``n`` random images (seeded) above their reconstructions."""
    originals = _check_images(originals, "originals")
    reconstructions = _check_images(reconstructions, "reconstructions")
    if originals.shape[:3] != reconstructions.shape[:3]:
        raise ValueError(
            f"originals {originals.shape} and reconstructions {reconstructions.shape} must pair "
            "up one to one."
        )
    n = min(int(n), len(originals))
    if n < 1:
        raise ValueError("plot_reconstructions needs at least one image.")
    chosen = np.sort(np.random.default_rng(seed).choice(len(originals), size=n, replace=False))
    figure = _new_figure(1.6 * n, 3.6)
    axes = figure.subplots(2, n, squeeze=False)
    for column, index in enumerate(chosen):
        _show_image(axes[0, column], originals[index])
        _show_image(axes[1, column], reconstructions[index])
    axes[0, 0].set_ylabel("original")
    axes[1, 0].set_ylabel("reconstruction")
    figure.suptitle("Reconstructions")
    return _finish(figure, path)


def interpolate(autoencoder, image_a, image_b, steps: int = 10,
                batch_size: int = 256) -> np.ndarray:
    """Decode ``steps`` points on the line from ``encode(a)`` to ``encode(b)`` (ends included).

    Returns ``(steps, H, W, C)`` float images. Smooth in-between images suggest a latent space
    without holes, which is what makes an autoencoder's codes usable for generation.
    """
    encoder = getattr(autoencoder, "encoder", None)
    decoder = getattr(autoencoder, "decoder", None)
    if encoder is None or decoder is None:
        raise ValueError(
            f"interpolate needs a model with an encoder and a decoder (an Autoencoder or a "
            f"SimCLR hybrid); got {type(autoencoder).__name__} without one."
        )
    if int(steps) < 2:
        raise ValueError(f"steps must be >= 2 to include both ends, got {steps}.")
    pair = np.stack([np.asarray(image_a), np.asarray(image_b)])  # uint8 is scaled when fed
    codes = predict_in_batches(encoder, pair, batch_size=batch_size)
    weights = np.linspace(0.0, 1.0, int(steps), dtype="float32")[:, None]
    path_codes = (1.0 - weights) * codes[0] + weights * codes[1]
    return predict_in_batches(decoder, path_codes, batch_size=batch_size)


def plot_interpolation(decoded_strip, *, path=None) -> Figure:
    """One row of decoded images from :func:`interpolate`, labelled by interpolation weight."""
    strip = _check_images(decoded_strip, "decoded_strip")
    steps = len(strip)
    if steps < 2:
        raise ValueError("an interpolation strip needs at least its two ends.")
    figure = _new_figure(1.3 * steps, 2.2)
    axes = figure.subplots(1, steps, squeeze=False)[0]
    for ax, image, weight in zip(axes, strip, np.linspace(0.0, 1.0, steps)):
        _show_image(ax, image)
        ax.set_xlabel(f"{weight:.2f}", fontsize=8)
    axes[0].set_ylabel("decoded")
    figure.supxlabel("interpolation weight (0 = first image, 1 = second)", fontsize=9)
    figure.suptitle("Latent interpolation")
    return _finish(figure, path)


# --------------------------------------------------------------------------- t-SNE


def _scatter_panels(panels, class_names, title, columns=4) -> Figure:
    """One scatter per (title -> (coords, labels)), a shared class legend, one figure."""
    if not panels:
        raise ValueError("nothing to plot: no t-SNE panels given.")
    class_names = [str(name) for name in class_names]
    columns = min(columns, len(panels))
    rows = -(-len(panels) // columns)
    figure = _new_figure(4.2 * columns + 1.5, 4.0 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    palette = colormaps["tab10" if len(class_names) <= 10 else "tab20"]
    handles = {}
    for ax, (name, (coords, labels)) in zip(axes, panels.items()):
        coords, labels = np.asarray(coords), np.asarray(labels).reshape(-1)
        if coords.ndim != 2 or coords.shape[1] != 2 or len(coords) != len(labels):
            raise ValueError(
                f"panel {name!r}: expected (N, 2) coordinates and N labels, got "
                f"{coords.shape} and {labels.shape}."
            )
        for class_id in np.unique(labels):
            mask = labels == class_id
            label = class_names[class_id] if 0 <= class_id < len(class_names) else str(class_id)
            handles[label] = ax.scatter(coords[mask, 0], coords[mask, 1], s=4, alpha=0.7,
                                        color=palette(int(class_id) % palette.N), label=label)
        ax.set_title(name)
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
        ax.grid(True, alpha=0.3)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    figure.legend(handles.values(), handles.keys(), loc="outside right center",
                  markerscale=3, title="class")
    figure.suptitle(title)
    return figure


def plot_tsne(images, latents, labels, class_names, sample: int = 2000, seed: int = 0, *,
              embeddings: TSNEEmbeddings | None = None, path=None) -> Figure:
    """Pixel space and latent space side by side, coloured by class.

    Pass ``embeddings`` (from :func:`tsne_embeddings`) to plot coordinates already computed.
    """
    if embeddings is None:
        embeddings = tsne_embeddings(images, latents, labels, sample=sample, seed=seed)
    figure = _scatter_panels(
        {"image space (PCA 50)": (embeddings.image_2d, embeddings.labels),
         "latent space": (embeddings.latent_2d, embeddings.labels)},
        class_names, f"t-SNE of {len(embeddings.labels)} test examples",
    )
    return _finish(figure, path)


def plot_tsne_grid(runs: dict, class_names, *, title: str = "t-SNE of latent codes per run",
                   path=None) -> Figure:
    """Several runs' 2-D latent coordinates side by side: ``runs`` maps name -> (coords, labels)."""
    return _finish(_scatter_panels(dict(runs), class_names, title), path)


# --------------------------------------------------------------------------- training curves


def _read_history(history_or_csv) -> dict:
    """``{name: [value per epoch]}`` from a Keras History, its ``.history`` dict or a CSVLogger
    file."""
    history = getattr(history_or_csv, "history", history_or_csv)
    if isinstance(history, dict):
        return {str(k): [float(v) for v in values] for k, values in history.items()}
    path = Path(history_or_csv)
    if not path.is_file():
        raise ValueError(
            f"history must be a Keras History, a dict of lists or a CSVLogger file; "
            f"{str(path)!r} is not a file."
        )
    columns = logged_history(path)  # a torn or damaged row costs that row, never a column
    if not columns:
        raise ValueError(f"{path} holds no epoch of a training log (unreadable, empty or not "
                         "CSV); pass the training_log.csv a run wrote, after one epoch or more.")
    return columns


def history_curves(history_or_csv) -> dict:
    """The curves ``plot_history`` would draw (``{name: [value per epoch]}``), read and checked
    before any other work: a file that is not a CSVLogger log, or holds no losses or metrics,
    raises a ValueError naming it. An in-memory history of no epochs gives ``{}``."""
    history = _read_history(history_or_csv)
    history = {name: values for name, values in history.items() if values}
    if not _curve_names(history) and not isinstance(
            getattr(history_or_csv, "history", history_or_csv), dict):
        raise ValueError(f"{history_or_csv} holds no losses or metrics to plot (numeric "
                         "columns such as loss, val_loss); pass the training_log.csv a run "
                         "wrote.")
    return history


def _curve_names(history):
    skip = {"lr", "learning_rate"}
    names = [k for k in history if not k.startswith("val_") and k not in skip]
    return names + [k[4:] for k in history if k.startswith("val_") and k[4:] not in history]


def plot_history(history_or_csv, *, path=None) -> Figure:
    """One panel per loss/metric: the training curve and, when logged, the validation curve."""
    history = _read_history(history_or_csv)
    names = _curve_names(history)
    if not names:
        raise ValueError("the history holds no losses or metrics to plot.")
    figure = _new_figure(4.0 * len(names), 3.4)
    axes = figure.subplots(1, len(names), squeeze=False)[0]
    for ax, name in zip(axes, names):
        for key, label, style in ((name, "train", "-o"), (f"val_{name}", "validation", "--s")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], style, markersize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
        ax.legend()
    figure.suptitle("Training curves")
    return _finish(figure, path)


# --------------------------------------------------------------------------- sweeps


def plot_sweep(results: dict, *, path=None) -> Figure:
    """``results[curve][latent_dim] = {"test_mae": ..., "test_accuracy": ...}`` as two panels."""
    if not results:
        raise ValueError("no sweep results to plot.")
    figure = _new_figure(9.0, 3.6)
    mae_ax, acc_ax = figure.subplots(1, 2)
    for curve, by_dim in results.items():
        dims = sorted(by_dim, key=float)
        mae_ax.plot(dims, [by_dim[d]["test_mae"] for d in dims], "-o", label=curve)
        acc_ax.plot(dims, [100 * by_dim[d]["test_accuracy"] for d in dims], "-o", label=curve)
    for ax, label in ((mae_ax, "test MAE (lower is better)"),
                      (acc_ax, "test probe accuracy (%)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("latent dimension")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    figure.suptitle(TITLES["sweep"])
    return _finish(figure, path)


def plot_spectrum(singular_values, effective_rank=None, *, path=None) -> Figure:
    """The variance share of each principal component of the codes (from their singular
    values), on a log scale; the effective rank, when given, is named in the title."""
    values = np.asarray(singular_values, dtype="float64")
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"expected a 1-D array of singular values, got shape {values.shape}.")
    variances = values ** 2
    share = variances / max(variances.sum(), np.finfo("float64").tiny)
    figure = _new_figure(5.0, 3.4)
    ax = figure.subplots()
    ax.semilogy(np.arange(1, len(share) + 1), np.maximum(share, 1e-12), "-o", markersize=2)
    ax.set_xlabel("principal component (largest variance first)")
    ax.set_ylabel("share of the variance")
    ax.grid(True, alpha=0.3)
    title = TITLES["spectrum"]
    if effective_rank is not None:
        title += f"\neffective rank {effective_rank:.1f} of {len(values)}"
    ax.set_title(title)
    return _finish(figure, path)


# --------------------------------------------------------------------------- confusion matrix


def plot_confusion_matrix(cm, class_names, normalize: bool = True, *, path=None) -> Figure:
    """Heat map of a confusion matrix; ``normalize`` divides each row by its true-class count."""
    cm = np.asarray(cm, dtype="float64")
    class_names = [str(name) for name in class_names]
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(
            f"expected a square ({len(class_names)}, {len(class_names)}) matrix for "
            f"{len(class_names)} class names, got shape {cm.shape}."
        )
    if normalize:
        cm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1.0)
    size = max(4.0, 0.55 * len(class_names) + 2.0)
    figure = _new_figure(size + 1.0, size)
    ax = figure.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    figure.colorbar(image, ax=ax, label="fraction of true class" if normalize else "count")
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if len(class_names) <= 20:
        threshold = 0.5 if normalize else np.nanmax(cm) / 2.0
        for (row, column), value in np.ndenumerate(cm):
            ax.text(column, row, f"{value:.2f}" if normalize else f"{int(value)}",
                    ha="center", va="center", fontsize=8,
                    color="white" if value > threshold else "black")
    ax.set_title("Confusion matrix" + (" (row-normalised)" if normalize else ""))
    return _finish(figure, path)
