"""``compare_runs``: one table and one t-SNE grid across finished evaluations.

It reads only what ``evaluate_model`` left on disk (``metrics.json`` + ``latent_tsne.npz``), so
runs trained on different days, machines or paradigms line up without reloading a model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_latent.evaluation import plots
from keras_latent.io import write_text_atomic

__all__ = ["RunFolderError", "load_run", "comparison_table", "compare_runs"]

COLUMNS = ("Method", "Accuracy from", "Train acc", "Val acc", "Test acc", "Test MAE",
           "Linear probe (test)", "k-NN acc")


class RunFolderError(ValueError):
    """A run folder that is missing or holds no readable ``metrics.json``."""


def load_run(run_dir) -> dict:
    """The run's ``metrics.json`` as a dict, with ``run_dir`` added."""
    run_dir = Path(run_dir)
    path = run_dir / "metrics.json"
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir} is not a folder; pass the output folders of "
                             "`keras-latent evaluate`.")
    if not path.is_file():
        raise RunFolderError(f"{run_dir} has no metrics.json; run `keras-latent evaluate "
                             f"MODEL.keras --output {run_dir}` first.")
    try:
        run = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RunFolderError(
            f"{path} is not valid JSON ({error}); re-run the evaluation.") from None
    missing = [key for key in ("method", "accuracy", "knn_accuracy") if key not in run]
    if missing:
        raise RunFolderError(f"{path} lacks {missing}; it was not written by evaluate_model.")
    run["run_dir"] = str(run_dir)
    return run


def _cell(value):
    return "—" if value is None else f"{100.0 * value:.2f} %"


def _mae_cell(run):
    mae = (run.get("mae") or {}).get("test")
    return "—" if mae is None else f"{mae:.4f}"


def _row_names(runs):
    """Each run's method, with its folder name added where two runs share a method."""
    methods = [str(run["method"]) for run in runs]
    return [f"{method} ({Path(run['run_dir']).name})" if methods.count(method) > 1 else method
            for method, run in zip(methods, runs)]


def comparison_table(runs) -> str:
    """The comparison table: a row per method; accuracy per split, test MAE, and the two
    separability figures every run gets alike (linear probe, k-NN), whatever its own head."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for name, run in zip(_row_names(runs), runs):
        accuracy = run["accuracy"]
        cells = [name, run.get("accuracy_source", "—")]
        cells += [_cell(accuracy.get(split)) for split in ("train", "val", "test")]
        cells += [_mae_cell(run), _cell(run.get("linear_probe_accuracy")),
                  _cell(run["knn_accuracy"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def compare_runs(run_dirs, output_dir) -> dict:
    """Write ``comparison.md`` (table + grid) and ``tsne_grid.png`` into ``output_dir``.

    Returns ``{"table": markdown, "report": path, "tsne_grid": path or None}``; the grid is left
    out when no run has t-SNE coordinates.
    """
    run_dirs = list(run_dirs)
    if not run_dirs:
        raise RunFolderError("no run folders given; pass one or more evaluation folders.")
    runs = [load_run(run_dir) for run_dir in run_dirs]
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_table(runs)

    panels = {}
    for name, run in zip(_row_names(runs), runs):
        if not run.get("latent_tsne"):
            continue
        tsne_path = Path(run["run_dir"]) / run["latent_tsne"]
        if not tsne_path.is_file():
            raise RunFolderError(f"{tsne_path} (named in {run['run_dir']}/metrics.json) is "
                                 "missing; re-run the evaluation.")
        with np.load(tsne_path) as coords:
            panels[name] = (coords["latent_2d"], coords["labels"])
    datasets = sorted({str(run.get("dataset")) for run in runs})
    grid = None
    if panels:
        class_names = runs[0].get("class_names") or [str(i) for i in range(10)]
        grid = output_dir / "tsne_grid.png"
        plots.plot_tsne_grid(panels, class_names, title=plots.TITLES["tsne_grid"], path=grid)

    lines = [f"# Comparison of {len(runs)} runs", "",
             f"Dataset: {', '.join(datasets)}. Accuracy comes from what 'Accuracy from' names: "
             "the classifier's own head, the run's probe on its frozen encoder, or else a linear "
             "probe on the frozen codes. 'Linear probe' and 'k-NN' are measured alike for every "
             "run on the test split (fitted on train codes; k-NN: k=20, cosine).", "", table, ""]
    if len(datasets) > 1:
        lines += ["**Warning:** these runs were evaluated on different datasets; their numbers "
                  "are not comparable.", ""]
    if grid is not None:
        lines += [f"![{plots.TITLES['tsne_grid']}]({grid.name})", "",
                  f"*{plots.CAPTIONS['tsne_grid']}*", ""]
    lines += ["Runs:", ""] + [f"- {name}: `{run['run_dir']}`"
                              for name, run in zip(_row_names(runs), runs)]
    report_path = write_text_atomic(output_dir / "comparison.md", "\n".join(lines) + "\n")
    return {"table": table, "report": str(report_path),
            "tsne_grid": None if grid is None else str(grid)}
