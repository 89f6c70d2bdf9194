"""What every recipe shares: the common flags, loading the data they name, the run folder, and
the closing summary, so a recipe file holds only its own hyperparameters and steps."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from keras_latent import paradigms
from keras_latent.data import load_dataset
from keras_latent.evaluation import evaluate_model
from keras_latent.evaluation.metadata import run_metadata
from keras_latent.models import remove_leftovers, save_model_atomic
from keras_latent.paradigms import TrainingConfig
from keras_latent.paradigms.distributed import (
    STRATEGIES,
    discard_worker_copy,
    resolve_strategy,
    write_path,
)

#: ``--quick``: a smoke run of a couple of minutes on a laptop CPU (a slice, one epoch).
QUICK_LIMIT = 2000
QUICK_EPOCHS = 1

#: A recipe's exit status on an error the user can act on, as for ``keras-latent`` and the tuner.
EXIT_ERROR = 2
#: ... and on Ctrl-C (the shell's convention for SIGINT).
EXIT_INTERRUPTED = 130


class RunError(Exception):
    """A failure a user can act on; ``run_recipe`` prints its one-line message and exits 2."""


class TrainingDiverged(RunError):
    """Training produced a non-finite loss or weights; nothing was saved over a good file."""


def run_recipe(main, argv=None):
    """Run a recipe's ``main`` as a script: one line on stderr, not a traceback, when it fails
    in a way the user can fix (exit status 2) or is interrupted with Ctrl-C (130)."""
    try:
        main(argv)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to resume training from the last "
              "finished epoch (or delete the output folder to start over)", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except RunError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def positive_int(text: str) -> int:
    """argparse ``type``: an integer >= 1 (argparse names the flag and exits 2 otherwise)."""
    return _number(text, int, "an integer >= 1", lambda value: value >= 1)


def non_negative_int(text: str) -> int:
    """argparse ``type``: an integer >= 0."""
    return _number(text, int, "an integer >= 0", lambda value: value >= 0)


def positive_float(text: str) -> float:
    """argparse ``type``: a finite number > 0 (no 0, inf or nan)."""
    return _number(text, float, "a finite number > 0",
                   lambda value: math.isfinite(value) and value > 0)


def non_negative_float(text: str) -> float:
    """argparse ``type``: a finite number >= 0."""
    return _number(text, float, "a finite number >= 0",
                   lambda value: math.isfinite(value) and value >= 0)


def _number(text, kind, expected, valid):
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def output_folder(text: str) -> Path:
    """argparse ``type``: a folder that is, or can be created, and written to."""
    path = Path(text)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{existing} is a file, not a folder; pass a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{existing} is not writable; pass another folder")
    return path


def recipe_parser(doc: str, *, name: str, epochs: int, batch_size: int,
                  learning_rate: float) -> argparse.ArgumentParser:
    """The flags every recipe takes; defaults come from the recipe's hyperparameter block."""
    title = (doc or "").strip().splitlines()[0] if doc else name
    parser = argparse.ArgumentParser(
        prog=f"python recipes/{name}.py", description=title,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data-dir", default=None,
                        help="folder with mnist.npz / cifar10.npz (else KERAS_LATENT_DATA_DIR, "
                             "Keras' cache, then TensorFlow Datasets)")
    parser.add_argument("--output", type=output_folder, default=f"runs/{name}", help="run folder")
    parser.add_argument("--epochs", type=positive_int, default=epochs)
    parser.add_argument("--batch-size", type=positive_int, default=batch_size)
    parser.add_argument("--learning-rate", type=positive_float, default=learning_rate)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="cap every split at N examples, for a quick look")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: --limit {QUICK_LIMIT}, {QUICK_EPOCHS} epoch, small t-SNE")
    parser.add_argument("--precision", default="auto",
                        choices=["auto", "float32", "bfloat16", "float16"],
                        help="'auto': bfloat16 on CPUs with avx512_bf16/amx_bf16 and on Ampere+ "
                             "GPUs, float16 on older GPUs, else float32")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="train under tf.distribute: 'mirrored' over this machine's GPUs, "
                             "'multi_worker' over the machines TF_CONFIG names (README: "
                             "'Training on several machines'); --batch-size is the global batch")
    return parser


def setup(args, dataset: str, base: TrainingConfig | None = None, **config_overrides):
    """Load the data and build the run's ``TrainingConfig`` and output folder from the flags.

    ``base`` (e.g. ``paradigms.FAST_CLASSIFIER_CONFIG``) supplies every setting the flags do
    not set.

    Returns ``(splits, config, output_dir)``. Problems with the data (missing folder, corrupt
    file...) or with ``TF_CONFIG`` end the program with the library's one-line message instead
    of a traceback. On a multi-worker run's non-chief workers ``output_dir`` is a temporary
    folder (``write_path``) that ``finish`` deletes: only the chief keeps files.
    """
    strategy = _strategy(getattr(args, "strategy", None))
    if args.quick:
        args.limit = min(args.limit or QUICK_LIMIT, QUICK_LIMIT)
        args.epochs = min(args.epochs, QUICK_EPOCHS)
    try:
        splits = load_dataset(dataset, data_dir=args.data_dir, seed=args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)
    if args.limit:
        splits = splits.limit(args.limit, seed=args.seed)
    output_dir = write_path(args.output, strategy)
    if output_dir != Path(args.output):
        _WORKER_COPIES[output_dir] = Path(args.output)
    output_dir.mkdir(parents=True, exist_ok=True)
    remove_leftovers(output_dir)  # temporary files of a save that was killed
    config = (base or TrainingConfig()).replace(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=args.seed, verbose=0 if args.quiet else "auto", precision=args.precision,
        strategy=strategy, **config_overrides,
    )
    print(f"{dataset}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} "
          f"test images of shape {splits.image_shape}; writing to {output_dir}/")
    print(f"precision: {args.precision} -> Keras dtype policy {config.dtype_policy}")
    return splits, config, output_dir


#: A non-chief worker's temporary run folders -> the folders the chief writes.
_WORKER_COPIES: dict = {}


def _strategy(name):
    """``--strategy``, made before anything else: MultiWorkerMirroredStrategy must start
    before TensorFlow runs any op."""
    try:
        return resolve_strategy(name)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def discard_if_worker(output_dir) -> bool:
    """On a non-chief worker, delete the temporary run folder ``setup`` gave it and say where
    the chief writes; True if this process is such a worker."""
    requested = _WORKER_COPIES.pop(Path(output_dir), None)
    if requested is None:
        return False
    discard_worker_copy(requested, output_dir)
    print(f"\nThis worker is done; the chief writes the results to {requested}/.")
    return True


def tsne_sample(args) -> int:
    return 300 if args.quick else 2000


def finish(output_dir, metrics: dict) -> None:
    """Print the headline numbers and where everything went (on the chief)."""
    output_dir = Path(output_dir)
    if discard_if_worker(output_dir):
        return
    print("\nResults:")
    print(json.dumps({k: v for k, v in metrics.items() if k in ("accuracy", "accuracy_flip_tta", "mae", "knn_accuracy")},
                     indent=2))
    print(f"\nEverything is in {output_dir}/:")
    for path in sorted(output_dir.rglob("*")):
        if path.is_file() and "backup" not in path.parts and not path.name.startswith("."):
            print(f"  {path}")


# --------------------------------------------------------------------------- the experiments
# Each trains one paradigm, saves its `.keras` models atomically into `output_dir`, and writes
# the evaluation report there (metrics.json, PNGs, report.md). Recipes and the comparison call
# these, so a method is defined once whichever way it is run.


def check_finite(run, what, good_file=None) -> None:
    """Raise ``TrainingDiverged`` when ``run``'s loss or weights are not finite.

    Called before a run's model is saved or used, so a diverged model never replaces a good
    file nor feeds the next phase. ``good_file`` is what the message points to instead (the
    best checkpoint before the blow-up, when one was saved)."""
    losses = run.history.get("loss", [])
    bad_epoch = next((epoch for epoch, value in enumerate(losses, 1)
                      if not math.isfinite(value)), None)
    if bad_epoch is None and all(np.isfinite(w).all() for w in run.model.get_weights()):
        return
    where = (f"the loss was {losses[bad_epoch - 1]} in epoch {bad_epoch}" if bad_epoch
             else "its weights are not finite")
    if good_file is not None and Path(good_file).is_file():
        kept = f"the last good model is {good_file}"
    else:
        kept = "no good model was saved"
    hint = "" if what == "probe" else " Try a lower --learning-rate."
    raise TrainingDiverged(f"{what} training diverged ({where}); {kept}; nothing was saved "
                           f"over it.{hint}")


def _report(model, splits, output_dir, method, history, tsne, classifier=None, flip_tta=False,
            config=None, phases=None):
    metadata = run_metadata(seed=config.seed if config else None,
                            precision=config.dtype_policy if config else None, phases=phases)
    return evaluate_model(model, splits, output_dir, method=method, history=history,
                          tsne_sample=tsne, classifier=classifier, flip_tta=flip_tta,
                          metadata=metadata)


class _Timer:
    """Wall-clock seconds per phase of an experiment, for the report's run metadata."""

    def __init__(self):
        self.phases, self._start = {}, time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.phases[name] = now - self._start
        self._start = now


def autoencoder_experiment(splits, output_dir, *, architecture, latent_dim, config, loss="mae",
                           augment=None, probe=None, probe_config=None, tsne=2000,
                           method="autoencoder + frozen probe") -> dict:
    """Assignment 1.2.1: autoencoder, then a classifier head on the frozen encoder.

    ``probe`` is ``train_probe``'s head choice, e.g. ``{"head": "mlp", "head_kwargs": {...}}``
    (default: linear)."""
    output_dir, timer = Path(output_dir), _Timer()
    run = paradigms.train_autoencoder(
        splits, architecture=architecture, latent_dim=latent_dim, loss=loss, augment=augment,
        config=config.replace(output_dir=str(output_dir / "checkpoints")),
    )
    check_finite(run, "autoencoder", output_dir / "checkpoints" / "best.keras")
    # Saved before the probe freezes the (shared) encoder, so the file resumes training whole.
    save_model_atomic(run.model, output_dir / "autoencoder.keras")
    timer.lap("training")
    probe_run = paradigms.train_probe(run.model.encoder, splits, **(probe or {}),
                                      config=_probe_config(probe_config, config))
    check_finite(probe_run, "probe", output_dir / "autoencoder.keras")
    save_model_atomic(probe_run.model, output_dir / "probe.keras")
    timer.lap("probe")
    return _report(run.model, splits, output_dir, method, run.history, tsne, probe_run.model,
                   config=config, phases=timer.phases)


def classifier_experiment(splits, output_dir, *, architecture, latent_dim, config, head="linear",
                          head_kwargs=None, augment="light", num_labels=None, tsne=2000,
                          method="classification-guided") -> dict:
    """Assignment 1.2.2: encoder and head trained together on the labels; the report gives
    the accuracy with and without flip test-time augmentation."""
    output_dir, timer = Path(output_dir), _Timer()
    run = paradigms.train_classifier(
        splits, architecture=architecture, latent_dim=latent_dim, head=head,
        head_kwargs=head_kwargs, augment=augment, num_labels=num_labels,
        config=config.replace(output_dir=str(output_dir / "checkpoints")),
    )
    check_finite(run, "classifier", output_dir / "checkpoints" / "best.keras")
    save_model_atomic(run.model, output_dir / "classifier.keras")
    timer.lap("training")
    return _report(run.model, splits, output_dir, method, run.history, tsne, flip_tta=True,
                   config=config, phases=timer.phases)


def simclr_experiment(splits, output_dir, *, architecture, latent_dim, config, temperature=0.5,
                      reconstruction_weight=0.0, probe=None, probe_config=None, num_labels=None,
                      tsne=2000, method=None, **simclr_kwargs) -> dict:
    """Assignment 1.2.3: SimCLR (or the contrastive + denoising hybrid), then a frozen probe
    (``probe`` as in ``autoencoder_experiment``)."""
    output_dir, timer = Path(output_dir), _Timer()
    method = method or ("SimCLR + denoising, frozen probe" if reconstruction_weight
                        else "SimCLR + frozen probe")
    run = paradigms.train_simclr(
        splits, architecture=architecture, latent_dim=latent_dim, temperature=temperature,
        reconstruction_weight=reconstruction_weight,
        config=config.replace(output_dir=str(output_dir / "checkpoints")), **simclr_kwargs,
    )
    check_finite(run, "SimCLR", output_dir / "checkpoints" / "best.keras")
    save_model_atomic(run.model, output_dir / "simclr.keras")  # before the probe freezes it
    timer.lap("training")
    probe_run = paradigms.train_probe(run.model.encoder, splits, num_labels=num_labels,
                                      **(probe or {}), config=_probe_config(probe_config, config))
    check_finite(probe_run, "probe", output_dir / "simclr.keras")
    save_model_atomic(probe_run.model, output_dir / "probe.keras")
    timer.lap("probe")
    return _report(run.model, splits, output_dir, method, run.history, tsne, probe_run.model,
                   config=config, phases=timer.phases)


def random_baseline_experiment(splits, output_dir, *, architecture, latent_dim, config,
                               probe=None, probe_config=None, num_labels=None, tsne=2000,
                               method="random encoder + frozen probe") -> dict:
    """The probe on an untrained encoder: what the architecture alone gives."""
    output_dir = Path(output_dir)
    run = paradigms.train_random_baseline(
        splits, architecture=architecture, latent_dim=latent_dim, num_labels=num_labels,
        **(probe or {}), config=_probe_config(probe_config, config),
    )
    check_finite(run, "probe")
    save_model_atomic(run.model, output_dir / "probe.keras")
    # Reported as the encoder with its probe, like the trained encoders' rows it sits beside.
    return _report(run.model.encoder, splits, output_dir, method, run.history, tsne, run.model,
                   config=config)


def _probe_config(probe_config, config):
    """The probe's own schedule, with the run's seed and verbosity."""
    base = probe_config or paradigms.PROBE_CONFIG
    return base.replace(seed=config.seed, verbose=config.verbose, precision=config.precision)
