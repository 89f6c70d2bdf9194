"""What every recipe shares: the common flags, loading the data they name, the run folder, how a
recipe ends on an error, and the closing summary, so a recipe file holds only its settings and
steps.

Standard library only at import time: a recipe parses its flags, and answers ``--help`` or a
bad flag, before TensorFlow loads (the library is imported inside the functions that need it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
from pathlib import Path

from keras_latent.errors import DiskFullError, RunError, disk_full_cause, lost_worker_cause
from keras_latent.flags import (
    DefaultsHelpFormatter,
    OneLineParser,
    add_device_flags,
    check_data_folder,
    choose_backend,
    data_folder,
    non_negative_int,
    output_folder,
    positive_float,
    positive_int,
)
from keras_latent.io import lock_folder

#: The datasets every recipe takes with ``--dataset``.
DATASETS = ("mnist", "cifar10", "fashion_mnist")
#: How the scripts named after a dataset start (``cifar_autoencoder.py``), and so their run folders.
SCRIPT_PREFIXES = {"mnist": "mnist", "cifar10": "cifar", "fashion_mnist": "fashion_mnist"}

#: ``--quick``: a smoke run of a couple of minutes on a laptop CPU (a slice, one epoch).
QUICK_LIMIT = 2000
QUICK_EPOCHS = 1

#: A recipe's exit status on an error the user can act on, as for ``keras-latent`` and the tuner
#: (a full disk and a run folder in use by another run included).
EXIT_ERROR = 2
#: ... on Ctrl-C (the shell's convention for SIGINT: 128 + 2) ...
EXIT_INTERRUPTED = 130
#: ... and on SIGTERM (128 + 15), e.g. from ``kill`` or a batch system ending the job.
EXIT_TERMINATED = 143

_RESUME = ("run the same command again to resume training from the last finished epoch (or "
           "delete the output folder to start over)")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread as Ctrl-C raises ``KeyboardInterrupt``: training
    stops where Ctrl-C would stop it, with the state of every finished epoch saved."""


def _raise_terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated()


def run_recipe(main, argv=None):
    """Run a recipe's ``main`` as a script: one line on stderr, not a traceback, when it fails
    in a way the user can fix (exit status 2, a full disk and a lost worker included), is
    interrupted with Ctrl-C (130) or is sent SIGTERM (143)."""
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        main(argv)
    except Terminated:
        _end(f"terminated (SIGTERM): {_RESUME}", EXIT_TERMINATED)
    except KeyboardInterrupt:
        _end(f"\ninterrupted: {_RESUME}", EXIT_INTERRUPTED)
    except RunError as error:
        _end(f"error: {error}", EXIT_ERROR)
    except Exception as error:
        full, lost = disk_full_cause(error), lost_worker_cause(error)
        if full is not None:
            _end_at_once(f"error: {DiskFullError(_folder_of(full))}", EXIT_ERROR)
        if lost is None:
            raise
        first = (str(lost).strip().splitlines() or [""])[0]
        _end_at_once(f"error: another worker of this run stopped ({first}); start every "
                     "worker's command again to resume from the last finished epoch",
                     EXIT_ERROR)
    finally:
        signal.signal(signal.SIGTERM, previous)
        release_run_folders()


def _end(message, status):
    print(message, file=sys.stderr)
    sys.exit(status)


def _end_at_once(message, status):
    """``_end`` without the interpreter's shutdown. After a write failed for a full disk, h5py
    and TensorFlow can still hold half-written files, and closing them at exit printed h5py
    tracebacks and then crashed (exit 139); what the run saved is whole already (every save is
    atomic), so nothing is lost by skipping that shutdown."""
    print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def _folder_of(error) -> str:
    """The run folder a full disk stopped (the last one this process held: the lock is gone
    once the error has left the experiment), else the folder of the file the failed write
    named, else the current folder."""
    if _HELD_LAST:
        return str(_HELD_LAST[-1])
    filename = getattr(error, "filename", None)
    return os.path.dirname(os.path.abspath(filename)) if filename else os.getcwd()


# --------------------------------------------------------------------------- the run folder's lock


def start_run(parser, argv=None):
    """``parser.parse_args(argv)``, then hold the run folder ``--output`` names: both before
    TensorFlow loads, so that a bad flag or a folder another run is writing fails at once.
    Then TensorFlow starts, without its start-up lines (``quiet_startup``).

    A multi-worker run holds only the folder this worker writes, once ``setup`` knows it
    (``write_path``): workers on one machine share ``--output``."""
    from keras_latent.flags import quiet_startup

    args = parser.parse_args(argv)
    if getattr(args, "strategy", None) != "multi_worker":
        hold_run_folder(args.output)
    quiet_startup()  # before the recipe imports the library, which loads TensorFlow
    return args


#: The run folders this process holds (``io.lock_folder``), each with what releases it.
_HELD: dict = {}
#: The run folder this process held last (one item): what a full-disk message names.
_HELD_LAST: list = []


def hold_run_folder(folder) -> None:
    """Lock ``folder`` for this process until ``release_run_folders`` (``finish``, or the end
    of ``run_recipe``): a second run into it fails at once, naming this process. Holding a
    folder this process holds already does nothing, so a recipe run twice in one process (a
    test resuming one) goes on."""
    folder = Path(folder).absolute()
    if folder in _HELD:
        return
    stack = contextlib.ExitStack()
    stack.enter_context(lock_folder(folder))
    _HELD[folder] = stack
    _HELD_LAST[:] = [folder]


def release_run_folders(folder=None) -> None:
    """Release ``folder`` (default: every run folder this process holds)."""
    for held in [Path(folder).absolute()] if folder is not None else list(_HELD):
        stack = _HELD.pop(held, None)
        if stack is not None:
            stack.close()


def dataset_script(method_main, dataset: str, doc: str, file: str):
    """The ``main`` of a script named after a dataset (``cifar_autoencoder.py``...): the method's
    recipe with that dataset's settings as defaults, and the script's own --help."""

    def main(argv=None):
        return method_main(argv, dataset=dataset, doc=doc, script=Path(file).stem)

    main.__doc__ = doc
    return main


def chosen_dataset(argv, default: str | None) -> str:
    """The ``--dataset`` in ``argv`` (else ``default``, else mnist), read before the full parser
    is built so that its defaults can follow the dataset. A name that is not a dataset is left
    for the full parser to refuse, naming the flag."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--dataset", default=default or "mnist")
    dataset = peek.parse_known_args(argv)[0].dataset
    return dataset if dataset in DATASETS else default or "mnist"


def method_parser(doc: str, method: str, dataset: str, settings: dict,
                  script: str | None = None) -> argparse.ArgumentParser:
    """``recipe_parser`` for a method recipe (``autoencoder.py``...): defaults from its settings
    for ``dataset``; the run folder is named like the dataset's script (runs/cifar_autoencoder)."""
    return recipe_parser(doc, name=script or method, dataset=dataset,
                         output=f"runs/{SCRIPT_PREFIXES[dataset]}_{method}",
                         epochs=settings["epochs"], batch_size=settings["batch_size"],
                         learning_rate=settings["learning_rate"])


def recipe_parser(doc: str, *, name: str, epochs: int, batch_size: int, learning_rate: float,
                  dataset: str = "mnist", output: str | None = None) -> argparse.ArgumentParser:
    """The flags every recipe takes; defaults come from the recipe's settings."""
    title = (doc or "").strip().splitlines()[0] if doc else name
    parser = RecipeParser(
        prog=f"python recipes/{name}.py", description=title,
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--dataset", choices=DATASETS, default=dataset,
                        help="the dataset to train on; the defaults shown are for it")
    parser.add_argument("--data-dir", type=data_folder, default=None,
                        help="folder with mnist.npz / cifar10.npz (else KERAS_LATENT_DATA_DIR, "
                             "Keras' cache, then TensorFlow Datasets)")
    parser.add_argument("--output", type=output_folder, default=output or f"runs/{name}",
                        help="run folder")
    parser.add_argument("--epochs", type=positive_int, default=epochs, help="training epochs")
    parser.add_argument("--batch-size", type=positive_int, default=batch_size,
                        help="examples per step")
    parser.add_argument("--learning-rate", type=positive_float, default=learning_rate,
                        help="peak learning rate")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seeds the validation split, --limit and training")
    _add_run_flags(parser)
    return parser


class RecipeParser(OneLineParser):
    """A recipe's parser: a bad flag is one line on stderr and exit status 2 (``OneLineParser``);
    parsing also checks that ``--data-dir`` holds the ``--dataset`` and picks the Keras backend
    ``--backend`` names, so that both happen before anything imports Keras; a data folder
    without the data or a backend that cannot be used is a flag error."""

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        try:
            check_data_folder(getattr(parsed, "data_dir", None), getattr(parsed, "dataset", None))
        except RunError as error:
            self.error(f"argument --data-dir: {error}")
        try:
            choose_backend(getattr(parsed, "backend", None))
        except RunError as error:
            self.error(str(error))
        return parsed


def _add_run_flags(parser):
    """The flags about how a run goes rather than what it trains."""
    add_device_flags(parser)
    parser.add_argument("--limit", type=positive_int, default=None,
                        help="cap every split at N examples, for a quick look")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: --limit {QUICK_LIMIT}, {QUICK_EPOCHS} epoch, small t-SNE")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    parser.add_argument("--tensorboard", action="store_true",
                        help="TensorBoard event files under OUTPUT/tensorboard/<phase>/ (view "
                             "with `tensorboard --logdir OUTPUT`, from the [tensorboard] extra)")


# --------------------------------------------------------------------------- the run


def setup(args, dataset: str | None = None, base=None, **config_overrides):
    """Load the data and build the run's ``TrainingConfig`` and output folder from the flags.

    ``dataset`` defaults to ``args.dataset``; ``base`` (e.g. ``paradigms.FAST_CLASSIFIER_CONFIG``)
    supplies every setting the flags do not set.

    Returns ``(splits, config, output_dir)``. Problems with the data (missing folder, corrupt
    file...) or with ``TF_CONFIG`` end the program with the library's one-line message instead
    of a traceback. On a multi-worker run's non-chief workers ``output_dir`` is a temporary
    folder (``write_path``) that ``finish`` deletes: only the chief keeps files. The folder is
    held for this process (``hold_run_folder``; recipes hold it sooner, in ``start_run``) until
    ``finish``.
    """
    from keras_latent.flags import quiet_startup

    quiet_startup()
    from keras_latent import serializables  # noqa: F401  (registers the custom classes)
    from keras_latent.evaluation.metadata import device_line, git_commit
    from keras_latent.io import remove_leftovers
    from keras_latent.paradigms import TrainingConfig
    from keras_latent.paradigms.distributed import write_path
    from keras_latent.paradigms.precision import precision_line

    dataset = dataset or args.dataset
    strategy = _strategy(getattr(args, "strategy", None))
    git_commit()  # pinned now: the report names the code the run started with
    if args.quick:
        args.limit = min(args.limit or QUICK_LIMIT, QUICK_LIMIT)
        args.epochs = min(args.epochs, QUICK_EPOCHS)
    splits = _load_splits(args, dataset)
    output_dir = write_path(args.output, strategy)
    if output_dir != Path(args.output):
        _WORKER_COPIES[output_dir] = Path(args.output)
    hold_run_folder(output_dir)  # held already unless a multi-worker run (``start_run``)
    remove_leftovers(output_dir)  # temporary files of a save that was killed
    config = (base or TrainingConfig()).replace(
        epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
        seed=args.seed, verbose=0 if args.quiet else "auto", precision=args.precision,
        tensorboard=str(output_dir / "tensorboard") if args.tensorboard else False,
        strategy=strategy, **config_overrides,
    )
    print(f"{dataset}: {len(splits.train)} train / {len(splits.val)} val / {len(splits.test)} "
          f"test images of shape {splits.image_shape}; writing to {output_dir}/")
    print(device_line())
    print(precision_line(args.precision, config.dtype_policy))
    return splits, config, output_dir


def _load_splits(args, dataset):
    """The flags' data, or the end of the program with one line saying what is wrong with it."""
    from keras_latent.data import load_splits

    try:
        return load_splits(dataset, args.data_dir, seed=args.seed, limit=args.limit)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


#: A non-chief worker's temporary run folders -> the folders the chief writes.
_WORKER_COPIES: dict = {}


def _strategy(name):
    """``--strategy``, made before anything else: MultiWorkerMirroredStrategy must start
    before TensorFlow runs any op."""
    from keras_latent.paradigms.distributed import resolve_strategy

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
    from keras_latent.paradigms.distributed import discard_worker_copy

    discard_worker_copy(requested, output_dir)
    print(f"\nThis worker is done; the chief writes the results to {requested}/.")
    return True


def probe_config(settings: dict):
    """The frozen-encoder probe's schedule (``PROBE_CONFIG``) at the learning rate, and with the
    epochs and batch size (``probe_epochs``, ``probe_batch_size``, optional), that a method's
    settings give it."""
    from keras_latent.paradigms import PROBE_CONFIG

    epochs = settings.get("probe_epochs", PROBE_CONFIG.epochs)
    batch_size = settings.get("probe_batch_size", PROBE_CONFIG.batch_size)
    return PROBE_CONFIG.replace(learning_rate=settings["probe_learning_rate"], epochs=epochs,
                                batch_size=batch_size)


def tsne_sample(args) -> int:
    """How many test images the t-SNE maps show: a small sample for a --quick run."""
    return 300 if args.quick else 2000


def run_experiment(args, experiment, setup_options=None, **kwargs) -> dict:
    """A method recipe's steps after its flags: ``setup`` (with ``setup_options``), the
    experiment on the run's data, config and t-SNE sample (with ``kwargs``), ``finish``."""
    try:
        splits, config, output_dir = setup(args, **(setup_options or {}))
        metrics = experiment(splits, output_dir, config=config, tsne=tsne_sample(args), **kwargs)
        finish(output_dir, metrics)
    finally:  # on an error too: another run may take the folder while this process goes on
        release_run_folders(args.output)
    return metrics


def finish(output_dir, metrics: dict) -> None:
    """Print the headline numbers and where everything went (on the chief); the run folder is
    released."""
    output_dir = Path(output_dir)
    release_run_folders(output_dir)
    if discard_if_worker(output_dir):
        return
    headline = ("accuracy", "accuracy_flip_tta", "mae", "knn_accuracy",
                "knn200_weighted_accuracy")
    print("\nResults:")
    print(json.dumps({k: v for k, v in metrics.items() if k in headline}, indent=2))
    print(f"\nEverything is in {output_dir}/:")
    for path in sorted(output_dir.rglob("*")):
        if path.is_file() and "backup" not in path.parts and not path.name.startswith("."):
            print(f"  {path}")
