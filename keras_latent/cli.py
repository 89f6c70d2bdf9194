"""``keras-latent evaluate|compare``: judge saved models and compare runs from a shell.

    keras-latent evaluate runs/ae/best.keras --dataset mnist --output runs/ae/eval
    keras-latent compare runs/ae/eval runs/simclr/eval --output runs/comparison

Every failure a user can cause (a wrong path, a corrupt file, a model that does not fit the
dataset) prints one line on stderr and exits with status 2; ``--traceback`` shows the full
trace for debugging.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_latent.errors import DiskFullError, RunError, disk_full_cause
from keras_latent.flags import (
    OneLineParser,
    add_backend_flag,
    check_data_folder,
    choose_backend,
    data_folder,
    model_file_problem,
    non_negative_int,
    output_folder,
    positive_int,
    quiet_startup,
)
from keras_latent.io import lock_folder

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="keras-latent",
        description="Evaluate saved keras-latent models and compare evaluated runs.",
    )
    parser.add_argument("--traceback", action="store_true",
                        help="show the full Python traceback on errors")
    add_backend_flag(parser)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    evaluate = commands.add_parser(
        "evaluate", help="metrics, plots and report.md for one saved model",
        description="Load MODEL.keras, score it on a dataset and write metrics.json, PNGs and "
                    "report.md.")
    evaluate.add_argument("model", type=Path, metavar="MODEL.keras")
    evaluate.add_argument("--dataset", required=True, help="mnist or cifar10")
    evaluate.add_argument("--data-dir", type=data_folder, default=None,
                          help="folder with <dataset>.npz (default: $KERAS_LATENT_DATA_DIR, "
                               "then Keras' cache)")
    evaluate.add_argument("--output", type=output_folder, default=None,
                          help="report folder (default: <model folder>/<model name>_evaluation)")
    evaluate.add_argument("--limit", type=positive_int, default=None,
                          help="cap every split at N examples (a seeded sample) for a quick look")
    evaluate.add_argument("--seed", type=non_negative_int, default=0,
                          help="seeds the validation split, --limit, the probe and t-SNE")
    evaluate.add_argument("--method", default=None,
                          help="row name in comparisons (default: the model kind)")
    evaluate.add_argument("--batch-size", type=positive_int, default=256)
    evaluate.add_argument("--tsne-sample", type=positive_int, default=2000,
                          help="test examples in the t-SNE plots (default 2000)")
    evaluate.add_argument("--history", type=Path, default=None,
                          help="CSVLogger file for training curves (default: training_log.csv "
                               "beside the model or in checkpoints/ beside it, when there is "
                               "one)")
    evaluate.set_defaults(run=_evaluate)

    compare = commands.add_parser(
        "compare", help="one table and a t-SNE grid across evaluated runs",
        description="Read the metrics.json of two or more RUN_DIRs and write comparison.md "
                    "(the same columns for every run) and tsne_grid.png.")
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    compare.add_argument("--output", type=output_folder, required=True,
                         help="folder for comparison.md")
    compare.add_argument("--pool", action="store_true",
                         help="one row per method: runs of the same method are its seeds, "
                              "shown as mean ± 95 %% interval, with the differences beyond "
                              "the seed spread listed")
    compare.set_defaults(run=_compare)
    return parser


# --------------------------------------------------------------------------- commands


def _percent(value):
    return "      —" if value is None else f"{100.0 * value:6.2f}%"


def _summary(result, report_path) -> str:
    splits = ("train", "val", "test")
    lines = [
        f"{result['method']} ({result['kind']}) on {result['dataset']}",
        f"{'':24}{'train':>8}{'val':>8}{'test':>8}",
        f"{'accuracy':24}" + "".join(f"{_percent(result['accuracy'][s]):>8}" for s in splits),
    ]
    if "mae" in result:
        lines.append(f"{'reconstruction MAE':24}" + "".join(
            f"{'—' if result['mae'][s] is None else format(result['mae'][s], '.4f'):>8}"
            for s in splits))
    lines += [
        _test_line(f"k-NN@{result['knn_k']} (majority)", _percent(result["knn_accuracy"])),
        _test_line("k-NN@200 (weighted)", _percent(result.get("knn200_weighted_accuracy"))),
        _test_line("linear-probe accuracy", _percent(result["linear_probe_accuracy"])),
    ]
    if result.get("silhouette") is not None:
        lines.append(_test_line("silhouette", f"{result['silhouette']:.3f}"))
    lines += _collapse_summary(result)
    lines.append(f"(accuracy: {result['accuracy_source']}; k-NN@200: "
                 f"{result.get('knn_weighted_protocol', '—')})")
    lines.append(f"report: {report_path}")
    return "\n".join(lines)


def _test_line(label, value) -> str:
    """A figure of the test split, in the summary's test column."""
    return f"{label:24}{'':16}{value:>8}"


def _collapse_summary(result) -> list:
    """The collapse diagnostics of the summary (alignment and uniformity: contrastive only)."""
    scores = result.get("collapse")
    if not scores:
        return []
    lines = [
        _test_line("effective rank", f"{scores['effective_rank']:.2f}")
        + f"  (of {result['latent_dim']})",
        _test_line("variance in top 10", _percent(scores["variance_share_top"].get("10"))),
        _test_line("normalised std (mean)", f"{scores['normalised_std_mean']:.4f}")
        + f"  (evenly spread: {scores['normalised_std_uniform']:.4f})",
    ]
    pairs = result.get("pairs")
    if pairs:
        lines += [_test_line("alignment", f"{pairs['alignment']:.4f}"),
                  _test_line("uniformity", f"{pairs['uniformity']:.4f}")]
    return lines


#: Where a training log may sit relative to the model: a paradigm writes it beside its
#: checkpoints, a recipe's experiment under <run>/checkpoints/ while its models sit in <run>/.
HISTORY_PLACES = ("training_log.csv", "checkpoints/training_log.csv")


def _found_history(model_path):
    """The training log of the run ``model_path`` belongs to, or None."""
    for place in HISTORY_PLACES:
        if (model_path.parent / place).is_file():
            return model_path.parent / place
    return None


def _input_problem(args) -> str | None:
    """What is wrong with the files ``evaluate`` is given (the model, ``--data-dir``), or
    None: checked before TensorFlow loads, so that a wrong path fails at once."""
    if args.command != "evaluate":
        return None
    problem = model_file_problem(args.model)
    if problem:
        return problem
    try:
        check_data_folder(args.data_dir, args.dataset)
    except RunError as error:
        return f"--data-dir: {error}"
    return None


def _report_folder(args) -> Path:
    """The folder the command writes: ``--output``, else beside the evaluated model."""
    if args.output is not None:
        return Path(args.output)
    model_path = args.model
    try:
        return output_folder(model_path.parent / f"{model_path.stem}_evaluation")
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"cannot write the report beside the model ({error}); pass "
                         "--output") from error


def _evaluate(args) -> int:
    from keras_latent.data import load_splits
    from keras_latent.evaluation.plots import history_curves
    from keras_latent.evaluation.report import evaluate_model
    from keras_latent.models import load_model

    model_path = args.model
    output = args.output
    history = args.history
    if history is None:
        history = _found_history(model_path)
    if history is not None and not Path(history).is_file():
        raise ValueError(
            f"--history {history} is not a file; pass a CSVLogger log or leave it out.")
    if history is not None:
        try:
            history_curves(history)  # before the work: a bad log fails now, naming itself
        except ValueError as error:
            raise ValueError(f"--history: {error}") from error

    model = load_model(model_path)
    splits = load_splits(args.dataset, args.data_dir, seed=args.seed, limit=args.limit)
    result = evaluate_model(model, splits, output, method=args.method,
                            batch_size=args.batch_size, tsne_sample=args.tsne_sample,
                            seed=args.seed, history=history)
    print()
    print(_summary(result, Path(output) / "report.md"))
    return 0


def _compare(args) -> int:
    from keras_latent.evaluation.compare import compare_runs

    result = compare_runs(args.run_dirs, args.output, pool=args.pool)
    print(result["table"])
    print(f"report: {result['report']}")
    return 0


# --------------------------------------------------------------------------- entry point


def main(argv=None) -> int:
    """Run one command; returns the exit status (0 ok, 2 for a usage or input error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed its usage message
        return int(exit_.code or 0)
    try:
        choose_backend(args.backend)
    except RunError as error:
        print(f"keras-latent: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    problem = _input_problem(args)
    if problem:
        print(f"keras-latent {args.command}: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args.output = _report_folder(args)
        with lock_folder(args.output):  # before TensorFlow loads: a second run fails at once
            quiet_startup()
            return args.run(args)
    except KeyboardInterrupt:
        print("keras-latent: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one readable line instead of a trace
        if args.traceback:
            raise
        lines = str(error).strip().splitlines()
        message = lines[0] if lines else type(error).__name__
        if disk_full_cause(error) is not None:
            message = str(DiskFullError(args.output))
        elif not isinstance(error, (RunError, ValueError, OSError)):  # not known: a bug?
            message = f"{type(error).__name__}: {message} (--traceback shows where)"
        print(f"keras-latent {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    raise SystemExit(main())
