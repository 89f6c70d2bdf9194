"""``compare_runs``: one table and one t-SNE grid across finished evaluations.

It reads only what ``evaluate_model`` left on disk (``metrics.json`` + ``latent_tsne.npz``), so
runs trained on different days, machines or paradigms line up without reloading a model.
A row may hold several seeds of one method: its cells are then the mean and a 95 % interval,
and the report lists the differences between methods that exceed the seed spread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from keras_latent.evaluation import plots, seeds
from keras_latent.io import write_text_atomic

__all__ = ["RunFolderError", "FIGURES", "load_run", "group_by_method", "comparison_table",
           "significant_differences", "compare_runs"]


class Figure(NamedTuple):
    """A column of the table: its header, the ``metrics.json`` path to its value, how it is
    printed, and whether higher is better (None: neither, e.g. a diagnostic)."""

    header: str
    keys: tuple
    style: str  # "percent", "fixed4" or "fixed2"
    higher_is_better: bool | None = True


FIGURES = (
    Figure("Train acc", ("accuracy", "train"), "percent"),
    Figure("Val acc", ("accuracy", "val"), "percent"),
    Figure("Test acc", ("accuracy", "test"), "percent"),
    Figure("Test MAE", ("mae", "test"), "fixed4", False),
    Figure("Linear probe (test)", ("linear_probe_accuracy",), "percent"),
    Figure("k-NN@20 (majority)", ("knn_accuracy",), "percent"),
    Figure("k-NN@200 (weighted)", ("knn200_weighted_accuracy",), "percent"),
    Figure("Effective rank", ("collapse", "effective_rank"), "fixed2", None),
    Figure("Alignment", ("pairs", "alignment"), "fixed4", False),
    Figure("Uniformity", ("pairs", "uniformity"), "fixed4", False),
)
COLUMNS = ("Method", "Accuracy from", "Seeds") + tuple(figure.header for figure in FIGURES)
#: The figures whose differences between methods are tested: those of held-out data (train
#: and validation accuracy judge the fit, not the representation).
JUDGED = tuple(figure for figure in FIGURES if figure.keys[-1] not in ("train", "val"))


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


def group_by_method(runs) -> list:
    """Runs (dicts) gathered into one list per method, in order of first appearance: the
    seeds of each method, for ``keras-latent compare --pool``."""
    groups = {}
    for run in runs:
        groups.setdefault(str(run["method"]), []).append(run)
    return list(groups.values())


# --------------------------------------------------------------------------- cells


def value_of(run, figure):
    """The figure's number in one run's metrics, None where the run has none (an older run, a
    classifier's MAE, a non-contrastive run's alignment)."""
    value = run
    for key in figure.keys:
        value = value.get(key) if isinstance(value, dict) else None
    return None if value is None else float(value)


def _number(value, style):
    if style == "percent":
        return f"{100.0 * value:.2f}"
    return f"{value:.4f}" if style == "fixed4" else f"{value:.2f}"


def _cell(values, style):
    """One figure over a row's seeds: the value, or mean ± half-width of the 95 % interval."""
    summary = seeds.summarise(values)
    if summary is None:
        return "—"
    unit = " %" if style == "percent" else ""
    if summary.half_width is None:
        return _number(summary.mean, style) + unit
    return f"{_number(summary.mean, style)} ± {_number(summary.half_width, style)}{unit}"


def _row_names(groups):
    """Each row's method, with its (first) folder name added where two rows share a method."""
    methods = [str(group[0]["method"]) for group in groups]
    return [f"{method} ({Path(group[0]['run_dir']).name})" if methods.count(method) > 1
            else method for method, group in zip(methods, groups)]


def _as_groups(runs):
    """Rows of runs: a dict is a row of one run, a list the seeds of one row."""
    return [list(run) if isinstance(run, (list, tuple)) else [run] for run in runs]


def comparison_table(runs) -> str:
    """The comparison table: a row per method (a run, or a list of its seeds); accuracy per
    split, test MAE, and the figures every run gets alike whatever its own head (linear probe,
    both k-NN protocols, effective rank; alignment and uniformity for contrastive runs)."""
    groups = _as_groups(runs)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for name, group in zip(_row_names(groups), groups):
        cells = [name, group[0].get("accuracy_source", "—"), str(len(group))]
        cells += [_cell([value_of(run, figure) for run in group], figure.style)
                  for figure in FIGURES]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def significant_differences(runs, alpha: float = seeds.ALPHA) -> list:
    """``(figure header, better row, relation, worse row, p-value)`` for every pair of rows
    with two or more seeds whose held-out figure (``JUDGED``) differs beyond the seed spread
    (Welch's t-test, p < ``alpha``); ``relation`` is "better than", or "higher than" for a
    diagnostic where neither direction is better (the higher row first)."""
    groups = _as_groups(runs)
    names = _row_names(groups)
    found = []
    for figure in JUDGED:
        values = [[value_of(run, figure) for run in group] for group in groups]
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                p_value = seeds.welch_p_value(values[i], values[j])
                if p_value is None or p_value >= alpha:
                    continue
                first_higher = (np.mean([v for v in values[i] if v is not None])
                                > np.mean([v for v in values[j] if v is not None]))
                better_first = first_higher if figure.higher_is_better is not False \
                    else not first_higher
                better, worse = (names[i], names[j]) if better_first else (names[j], names[i])
                relation = "higher than" if figure.higher_is_better is None else "better than"
                found.append((figure.header, better, relation, worse, p_value))
    return found


# --------------------------------------------------------------------------- the report


def _tsne_panels(groups):
    """The t-SNE coordinates of each row's first run, by row name."""
    panels = {}
    for name, group in zip(_row_names(groups), groups):
        run = group[0]
        if not run.get("latent_tsne"):
            continue
        tsne_path = Path(run["run_dir"]) / run["latent_tsne"]
        if not tsne_path.is_file():
            raise RunFolderError(f"{tsne_path} (named in {run['run_dir']}/metrics.json) is "
                                 "missing; re-run the evaluation.")
        with np.load(tsne_path) as coords:
            panels[name] = (coords["latent_2d"], coords["labels"])
    return panels


def _seed_lines(groups):
    """What the ± means and which differences exceed the seed spread (rows of 2+ seeds)."""
    if max(len(group) for group in groups) < 2:
        return []
    lines = ["Rows of several seeds show the mean ± the half-width of its 95 % interval "
             "(Student's t, n - 1 degrees of freedom).", "",
             f"### Differences beyond the seed spread (Welch's t-test, p < {seeds.ALPHA})", ""]
    found = significant_differences(groups)
    lines += [f"- {header}: {better} {relation} {worse} (p = {p_value:.3g})"
              for header, better, relation, worse, p_value in found]
    if not found:
        lines.append("- none: every difference between methods is within the seed spread.")
    lines += ["", "Every pair of rows not listed (for a test-split figure both have) differs "
              "by less than the seed spread can explain.", ""]
    return lines


def _intro(runs, datasets):
    return [f"# Comparison of {len(runs)} methods", "",
            f"Dataset: {', '.join(datasets)}. Accuracy comes from what 'Accuracy from' names: "
            "the classifier's own head, the run's probe on its frozen encoder, or else a linear "
            "probe on the frozen codes. 'Linear probe', both k-NN and the collapse figures are "
            "measured alike for every run on the test split (fitted on train codes). k-NN@20: "
            "majority vote of 20 cosine neighbours (this project's figure until now); k-NN@200: "
            "the self-supervised benchmarks' protocol (InstDisc, lightly, solo-learn): 200 "
            "cosine neighbours voting exp(similarity / 0.07). Effective rank: exp of the "
            "entropy of the normalised singular values of the test codes (at most the latent "
            "size). Alignment / uniformity (Wang & Isola; lower is better): contrastive runs "
            "only, on two augmented views of held-out test images."]


def compare_runs(run_dirs, output_dir, pool: bool = False) -> dict:
    """Write ``comparison.md`` (table + grid) and ``tsne_grid.png`` into ``output_dir``.

    Each item of ``run_dirs`` is a run folder (a row) or a list of folders (the seeds of one
    row); ``pool=True`` makes one row of the runs of each method instead.
    Returns ``{"table": markdown, "report": path, "tsne_grid": path or None}``; the grid is left
    out when no run has t-SNE coordinates.
    """
    items = list(run_dirs)
    if not items:
        raise RunFolderError("no run folders given; pass one or more evaluation folders.")
    groups = [[load_run(folder) for folder in item] if isinstance(item, (list, tuple))
              else [load_run(item)] for item in items]
    if pool:
        groups = group_by_method([run for group in groups for run in group])
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    table = comparison_table(groups)
    runs = [run for group in groups for run in group]
    datasets = sorted({str(run.get("dataset")) for run in runs})
    panels, grid = _tsne_panels(groups), None
    if panels:
        class_names = runs[0].get("class_names") or [str(i) for i in range(10)]
        grid = output_dir / "tsne_grid.png"
        plots.plot_tsne_grid(panels, class_names, title=plots.TITLES["tsne_grid"], path=grid)

    lines = _intro(groups, datasets) + ["", table, ""] + _seed_lines(groups)
    if len(datasets) > 1:
        lines += ["**Warning:** these runs were evaluated on different datasets; their numbers "
                  "are not comparable.", ""]
    if grid is not None:
        lines += [f"![{plots.TITLES['tsne_grid']}]({grid.name})", "",
                  f"*{plots.CAPTIONS['tsne_grid']}* (the first seed of each row)", ""]
    lines += ["Runs:", ""] + [f"- {name}: " + ", ".join(f"`{run['run_dir']}`" for run in group)
                              for name, group in zip(_row_names(groups), groups)]
    report_path = write_text_atomic(output_dir / "comparison.md", "\n".join(lines) + "\n")
    return {"table": table, "report": str(report_path),
            "tsne_grid": None if grid is None else str(grid)}
