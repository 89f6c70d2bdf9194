"""Search the hyperparameters of a keras-latent paradigm with KerasTuner.

    python tuning/search.py --task autoencoder --dataset mnist --tuner bayesian \\
        --max-trials 20 --epochs 10 --directory runs/tuning --project ae_mnist

The same command again resumes the search (finished trials are kept, an interrupted one is
rerun); ``--overwrite`` starts over. For several workers, run the same command with KerasTuner's
environment variables (``KERASTUNER_TUNER_ID=chief|tuner0|tuner1...``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``) against a shared ``--directory``; see tuning/README.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python tuning/search.py`: make `tuning` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from keras_latent.io import write_json_atomic  # noqa: E402 - light: no TensorFlow

TASKS = ("autoencoder", "classifier", "simclr")
DATASETS = ("mnist", "cifar10")
TUNERS = ("random", "bayesian", "hyperband")
SPEC_FILE = "search_spec.json"
BEST_HPS_FILE = "best_hyperparameters.json"
BEST_MODEL_FILE = "best_model.keras"
RAN_BY_FILE = "ran_by.txt"


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def _folder(text):
    """A folder that exists or can be created (KerasTuner wants the path as a string)."""
    from keras_latent.flags import output_folder  # light: no TensorFlow

    return str(output_folder(text))


def build_parser() -> argparse.ArgumentParser:
    from keras_latent.flags import (  # light: no TensorFlow
        DefaultsHelpFormatter,
        OneLineParser,
        add_device_flags,
        int_at_least,
    )

    parser = OneLineParser(
        prog="tuning/search.py",
        description=(
            "KerasTuner search over a keras-latent paradigm. Objectives: autoencoder -> val_mae "
            "(min), classifier -> val_accuracy (max), simclr -> val_knn_accuracy (max; never "
            "the contrastive loss, whose scale moves with the temperature). At the end the best "
            "trials are printed and DIR/NAME/ gets best_hyperparameters.json and "
            "best_model.keras: a model RETRAINED FROM SCRATCH with the best hyperparameters on "
            "the train split for --epochs epochs, its epochs monitored on the validation split "
            "(the split the search selected by), so the saved file is a clean, fully trained "
            "model rather than a checkpoint of one trial (which Hyperband may have cut short). "
            "The test split is never used here."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--task", required=True, choices=TASKS)
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--tuner", default="random", choices=TUNERS,
                        help="hyperband picks trials from --epochs (its max_epochs); "
                             "--max-trials caps the count")
    parser.add_argument("--max-trials", type=int_at_least(1), default=10,
                        help="total trials, counting those of earlier runs of this search")
    parser.add_argument("--epochs", type=int_at_least(1), default=5,
                        help="epochs per trial and for the final retraining")
    parser.add_argument("--directory", type=_folder, default="tuning_runs",
                        help="KerasTuner directory")
    parser.add_argument("--project", default=None,
                        help="project name inside --directory (default: TASK_DATASET)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with mnist.npz / cifar10.npz (else KERAS_LATENT_DATA_DIR)")
    parser.add_argument("--limit", type=int_at_least(2), default=None,
                        help="cap every split at this many images (quick runs)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seeds the tuner's proposals and the weights/data of every trial")
    parser.add_argument("--batch-size", type=int_at_least(1), default=128)
    parser.add_argument("--overwrite", action="store_true",
                        help="delete this project's earlier trials and start over "
                             "(ignored by distributed workers: only the chief may)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars")
    parser.add_argument("--top", type=int_at_least(1), default=5, help="rows of the best-trials table")
    parser.add_argument("--tensorboard", action="store_true",
                        help="TensorBoard event files per trial under DIR/NAME/tensorboard/"
                             "TRIAL/execution0 (and the retrained model's under .../retrained); "
                             "view with `tensorboard --logdir DIR/NAME/tensorboard`")
    add_device_flags(parser, strategies=("mirrored",),
                     strategy_help="'mirrored': each trial data parallel over this machine's "
                                   "GPUs (--batch-size is the global batch); several machines "
                                   "run a search as KerasTuner's chief and workers (README)")
    # The flag before --strategy existed, kept so that older commands still run.
    parser.add_argument("--mirrored", action="store_const", const="mirrored", dest="strategy",
                        help=argparse.SUPPRESS)
    _add_search_space(parser.add_argument_group("search space"))
    return parser


def _add_search_space(space) -> None:
    """The flags that bound what the tuner may propose."""
    from keras_latent.flags import int_at_least  # light

    space.add_argument("--min-depth", type=int_at_least(1), default=2, help="fewest conv stages")
    space.add_argument("--max-depth", type=int_at_least(1), default=4, help="most conv stages")
    space.add_argument("--min-channels", type=int_at_least(1), default=8, help="a power of two")
    space.add_argument("--max-channels", type=int_at_least(1), default=256, help="a power of two")
    space.add_argument("--latent-dim", type=int_at_least(1), nargs="+", default=[128],
                       help="one value fixes it; several make it a hyperparameter")
    space.add_argument("--kernel-sizes", type=int_at_least(1), nargs="+", default=[3, 5, 7],
                       help="the kernel sizes a stage chooses from")
    space.add_argument("--preset", default=None,
                       help="search around this architecture preset (e.g. cifar_conv): its "
                            "channels rescaled (a power of two in --min-channels.."
                            "--max-channels) and one kernel size for all stages, instead of "
                            "plain stride-2 stages")
    space.add_argument("--objective", default="mae", choices=["mae", "knn"],
                       help="autoencoder only: rank by validation MAE, or by the k-NN accuracy "
                            "of the validation codes (closer to what a frozen probe reads)")
    space.add_argument("--mask-ratios", type=float, nargs="+", default=[0.0],
                       help="autoencoder only: the share of 4x4 squares greyed out in the "
                            "input (denoising); several make it a hyperparameter")


def _task_options(parser, args) -> dict:
    """The HyperModel's own arguments; the autoencoder-only flags are refused elsewhere."""
    if args.task == "autoencoder":
        return {"objective": args.objective, "mask_ratios": tuple(args.mask_ratios)}
    given = [flag for flag, value, default in (("--objective", args.objective, "mae"),
                                               ("--mask-ratios", args.mask_ratios, [0.0]))
             if value != default]
    if given:
        parser.error(f"only --task autoencoder takes {', '.join(given)}")
    return {}


def distributed_role() -> str | None:
    """``None`` for a single process, else ``"chief"`` or ``"worker"`` (KerasTuner's env)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    return "chief" if "chief" in os.environ.get("KERASTUNER_TUNER_ID", "") else "worker"


def _check_environment(parser):
    if "KERASTUNER_ORACLE_IP" in os.environ:
        missing = [name for name in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID")
                   if not os.environ.get(name)]
        if missing:
            parser.error(f"KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not; a "
                         "distributed search needs all three (see tuning/README.md)")


# ----------------------------------------------------------------------------------------------
# Files of a search
# ----------------------------------------------------------------------------------------------


def check_project_files(parser, project_dir: Path) -> None:
    """Refuse, naming the file, a project whose KerasTuner state cannot be read back (a kill or
    a full disk while KerasTuner wrote it), instead of failing deep inside its reload."""
    files = [project_dir / "oracle.json", *sorted(project_dir.glob("tuner*.json")),
             *sorted(project_dir.glob("trial_*/trial.json"))]
    for path in files:
        if not path.is_file():
            continue
        try:
            json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as error:
            problem = str(error).splitlines()[0] if str(error) else type(error).__name__
            parser.error(f"{path} cannot be read back ({problem}; truncated by a kill or a "
                         "full disk?): pass --overwrite to start this search over, or pick "
                         "another --project")


def check_spec(parser, project_dir: Path, spec: dict) -> None:
    """Refuse to resume a search of another task/dataset/tuner: its oracle and trials would be
    mixed with this one's (or fail to reload deep inside KerasTuner)."""
    marker = project_dir / SPEC_FILE
    if marker.is_file():
        try:
            found = json.loads(marker.read_text())
        except (OSError, ValueError) as error:
            parser.error(f"{marker} is unreadable ({error}); delete it or pass --overwrite")
        different = {key: found.get(key) for key in spec if found.get(key) != spec[key]}
        if different:
            held = ", ".join(f"{key}={found.get(key)!r}" for key in spec)
            parser.error(
                f"{project_dir} holds another search ({held}); pick another --project or "
                "--directory, or pass --overwrite to delete it and start over"
            )
    elif (project_dir / "oracle.json").is_file():
        parser.error(f"{project_dir} holds a KerasTuner search not started by this script; "
                     "pick another --project or pass --overwrite")


# ----------------------------------------------------------------------------------------------
# Tuner
# ----------------------------------------------------------------------------------------------


def _search_tuner(tuner_class):
    """``tuner_class`` with two changes.

    - A ``ran_by.txt`` in each trial folder names the tuner id that ran it: in a distributed
      search it shows which worker did what.
    - KerasTuner imports TensorBoard's hparams plugin before every trial on the TensorFlow
      backend, even with no TensorBoard callback; TensorFlow 2.21 no longer installs it. Here
      a TensorBoard callback gets its per-trial folder either way, and the hparams summary
      (the HParams dashboard) only when the ``tensorboard`` package is installed.
    """

    class SearchTuner(tuner_class):
        def on_trial_end(self, trial):
            Path(self.get_trial_dir(trial.trial_id), RAN_BY_FILE).write_text(self.tuner_id + "\n")
            super().on_trial_end(trial)

        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            boards = [callback for callback in callbacks
                      if type(callback).__name__ == "TensorBoard"]
            if boards and hparams_available():
                super()._configure_tensorboard_dir(callbacks, trial, execution)
                return
            for board in boards:
                board.log_dir = self._get_tensorboard_dir(board.log_dir, trial.trial_id,
                                                          execution)

    SearchTuner.__name__ = SearchTuner.__qualname__ = tuner_class.__name__
    return SearchTuner


def hparams_available() -> bool:
    """Whether TensorBoard's hparams plugin (the ``tensorboard`` package) can be imported."""
    try:
        from tensorboard.plugins.hparams import api  # noqa: F401
    except ImportError:
        return False
    return True


def tensorboard_callback(log_dir: Path):
    """``--tensorboard``'s callback: Keras' own, writing without the ``tensorboard`` package."""
    from keras_latent.paradigms import TensorBoard

    return TensorBoard(str(log_dir), write_graph=False)


def make_tuner(args, hypermodel, *, overwrite):
    import keras_tuner

    # KerasTuner's oracles treat seed=0 as "no seed" (`seed or random.randint(...)`), so
    # shift by one: every --seed, 0 included, then gives a repeatable search.
    common = dict(hypermodel=hypermodel, objective=hypermodel.objective, seed=args.seed + 1,
                  directory=args.directory, project_name=args.project, overwrite=overwrite)
    if args.tuner == "random":
        return _search_tuner(keras_tuner.RandomSearch)(max_trials=args.max_trials, **common)
    if args.tuner == "bayesian":
        return _search_tuner(keras_tuner.BayesianOptimization)(
            max_trials=args.max_trials, num_initial_points=min(args.max_trials, 3), **common)
    tuner = _search_tuner(keras_tuner.Hyperband)(max_epochs=args.epochs, factor=3, **common)
    if isinstance(tuner.oracle, keras_tuner.Oracle):  # a worker's is a client of the chief's
        tuner.oracle.max_trials = args.max_trials
    return tuner


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def _format(value):
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def searched_values(hp) -> dict:
    """Hyperparameter values without KerasTuner's bookkeeping (Hyperband's ``tuner/...``)."""
    return {name: value for name, value in hp.values.items() if not name.startswith("tuner/")}


def best_trials_table(trials, objective_name) -> str:
    names = sorted({name for trial in trials for name in searched_values(trial.hyperparameters)})
    header = ["rank", "trial", objective_name, *names]
    rows = [[str(rank), trial.trial_id, _format(trial.score),
             *(_format(searched_values(trial.hyperparameters).get(name, "-")) for name in names)]
            for rank, trial in enumerate(trials, 1)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths))
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


#: The share of the way from an untrained model's score to a perfect one (0 for a loss, 1 for an
#: accuracy) that the best trial must cover for the trials to rank anything but noise.
LEARNED_ENOUGH = 0.1


def short_trials_warning(objective, untrained: float, best: float) -> str | None:
    """Why the trials cannot rank settings, when the best one is barely better than the
    model it started from (trials too short: few epochs on a small --limit), else None."""
    perfect = 0.0 if objective.direction == "min" else 1.0
    gap = abs(untrained - perfect)
    if not gap or (gap - abs(best - perfect)) / gap >= LEARNED_ENOUGH:
        return None
    return (f"the best trial's {objective.name} ({_format(best)}) is within "
            f"{LEARNED_ENOUGH:.0%} of an untrained model's ({_format(untrained)}): the trials "
            "were too short to learn, so their ranking is noise; raise --epochs or --limit")


def finish(tuner, hypermodel, project_dir: Path, args) -> int:
    """Print the best trials, save their hyperparameters and a model retrained from them."""
    import keras

    from keras_latent.models import save_model_atomic

    objective = hypermodel.objective
    trials = tuner.oracle.get_best_trials(args.top)
    if not trials:
        print(f"No trial of {project_dir} completed; see the trial messages in "
              f"{project_dir}/trial_*/trial.json", file=sys.stderr)
        return 1
    print(f"\nBest trials of {project_dir} by {objective.name} ({objective.direction}):")
    print(best_trials_table(trials, objective.name))
    untrained = hypermodel.untrained_score(trials[0].hyperparameters)
    print(f"Untrained model with trial {trials[0].trial_id}'s settings: {objective.name} = "
          f"{_format(untrained)}")
    warning = short_trials_warning(objective, untrained, trials[0].score)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)

    best = trials[0]
    write_json_atomic(project_dir / BEST_HPS_FILE, {
        "task": args.task, "dataset": args.dataset, "tuner": args.tuner,
        "objective": objective.name, "direction": objective.direction,
        "trial_id": best.trial_id, "score": best.score,
        "hyperparameters": searched_values(best.hyperparameters),
    })

    print(f"\nRetraining trial {best.trial_id}'s hyperparameters from scratch for "
          f"{args.epochs} epoch(s)...")
    keras.utils.set_random_seed(args.seed)
    model = hypermodel.build(best.hyperparameters)
    boards = ([tensorboard_callback(project_dir / "tensorboard" / "retrained")]
              if args.tensorboard else [])
    history = hypermodel.fit(best.hyperparameters, model, callbacks=boards).history
    save_model_atomic(model, project_dir / BEST_MODEL_FILE)
    final = history.get(objective.name, [float("nan")])[-1]
    print(f"Retrained model: final {objective.name} = {_format(float(final))}; saved "
          f"{project_dir / BEST_MODEL_FILE} and {project_dir / BEST_HPS_FILE}")
    return 0


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.project = args.project or f"{args.task}_{args.dataset}"
    _check_environment(parser)
    role = distributed_role()
    # Workers must never delete the shared project the chief is serving.
    overwrite = args.overwrite and role != "worker"
    options = _task_options(parser, args)
    project_dir, spec = _checked_project(parser, args, options, overwrite)
    hypermodel = _hypermodel(parser, args, options)  # Keras loads here, after the checks
    tuner = make_tuner(args, hypermodel, overwrite=overwrite)
    write_json_atomic(project_dir / SPEC_FILE, spec)
    tuner.search(callbacks=_tensorboard_callbacks(parser, args, project_dir))
    if role == "worker":
        print(f"Worker {os.environ['KERASTUNER_TUNER_ID']} done; the chief writes the results.")
        return 0
    return finish(tuner, hypermodel, project_dir, args)


def _checked_project(parser, args, options, overwrite):
    """(project folder, spec): the search this command asks for, checked against what an
    earlier run left in the folder unless it starts over."""
    project_dir = Path(args.directory) / args.project
    spec = {"task": args.task, "dataset": args.dataset, "tuner": args.tuner}
    if options.get("objective", "mae") != "mae":  # older projects' specs have no objective
        spec["objective"] = options["objective"]
    if project_dir.exists() and not project_dir.is_dir():
        parser.error(f"{project_dir} is a file, not a project folder; pick another --project "
                     "or --directory")
    if not overwrite:
        check_spec(parser, project_dir, spec)
        check_project_files(parser, project_dir)
    return project_dir, spec


def _hypermodel(parser, args, options):
    """Start the backend, load the data and build the HyperModel; a bad setting ends the
    command with one line. Heavy imports happen here, after the argument checks, so a bad
    command fails in a blink."""
    from keras_latent.errors import RunError
    from keras_latent.flags import choose_backend, quiet_startup

    try:
        choose_backend(args.backend)
    except RunError as error:
        parser.error(str(error))
    quiet_startup()
    import keras

    from keras_latent import serializables  # noqa: F401  (registers the custom classes)
    from keras_latent.data import load_splits
    from keras_latent.evaluation.metadata import device_line
    from keras_latent.paradigms import TrainingConfig
    from keras_latent.paradigms.precision import precision_line
    from tuning.hypermodels import HYPERMODELS, EncoderSpace

    keras.utils.set_random_seed(args.seed)
    try:
        space = EncoderSpace(min_depth=args.min_depth, max_depth=args.max_depth,
                             min_channels=args.min_channels, max_channels=args.max_channels,
                             latent_dims=tuple(args.latent_dim),
                             kernel_sizes=tuple(args.kernel_sizes), preset=args.preset)
        config = TrainingConfig(epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                                verbose=0 if args.quiet else "auto",
                                strategy=args.strategy,
                                precision=args.precision)
        print(device_line())
        print(precision_line(args.precision, config.dtype_policy))
        splits = load_splits(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
        return HYPERMODELS[args.task](splits, space=space, config=config, **options)
    except ValueError as error:  # DatasetError, SearchSpaceError, TrainingConfig checks
        parser.error(str(error))


def _tensorboard_callbacks(parser, args, project_dir) -> list:
    """With --tensorboard, event files per trial under DIR/NAME/tensorboard/TRIAL/execution0."""
    if not args.tensorboard:
        return []
    from keras_latent.backend import tensorflow_installed

    if not tensorflow_installed():
        parser.error("--tensorboard writes TensorFlow event files, and TensorFlow is not "
                     "installed here: pip install tensorflow, or search without it")
    note = ("" if hparams_available() else "; the HParams dashboard (hyperparameters "
            "beside scores) needs the tensorboard package: pip install -e \".[tensorboard]\"")
    print(f"TensorBoard: one folder per trial under {project_dir / 'tensorboard'}{note}")
    return [tensorboard_callback(project_dir / "tensorboard")]


if __name__ == "__main__":
    sys.exit(main())
