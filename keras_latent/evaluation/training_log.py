"""The per-epoch training log (``training_log.csv``) read back so that a torn or damaged line
costs that line, never a column or an epoch: what resumed runs, the curves of a report and
``keras-latent evaluate --history`` all read. Standard library only."""

from __future__ import annotations

import csv
import math
from pathlib import Path


def read_training_log(log_path) -> tuple[list, list]:
    """``(columns, rows)`` of a CSV training log, each row ``{column: value}`` (an int epoch,
    floats), or ``([], [])`` when there is none.

    A row that does not parse is left out, never a column: a last line without its newline (a
    kill cut it), a row of the wrong width, a cell that is not a number in a numeric column.
    An empty or ``NA`` cell is a value not logged that epoch (the row keeps the rest)."""
    columns, rows, _ = read_log(log_path)
    return columns, rows


def read_log(log_path):
    """``read_training_log``'s result and the number of lines it left out."""
    try:
        text = Path(log_path).read_text(encoding="utf-8")
    except (OSError, ValueError):
        return [], [], 0
    lines = text.splitlines(keepends=True)
    torn = int(bool(lines) and not lines[-1].endswith("\n"))
    records = [_fields(line) for line in lines[:len(lines) - torn]]
    if not records or not records[0] or "epoch" not in records[0]:
        return [], [], 0
    header, cells = records[0], [fields for fields in records[1:] if fields != []]
    whole = [row for row in (_parsed_row(header, fields) for fields in cells) if row is not None]
    # A column is numeric when a row holds a number in it; text there marks a torn row.
    numeric = {name for row in whole for name, value in row.items() if not isinstance(value, str)}
    rows = [{name: value for name, value in row.items() if name in numeric} for row in whole
            if not any(isinstance(value, str) and name in numeric for name, value in row.items())]
    columns = [name for name in header if name in numeric]
    return columns, rows, torn + len(cells) - len(rows)


def _fields(line):
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _parsed_row(header, fields):
    """``{column: number}`` of one line (a cell that is no number kept as its text, an empty or
    ``NA`` cell left out), or None for a line of the wrong width or without an int epoch."""
    if fields is None or len(fields) != len(header):
        return None
    row = {}
    for name, cell in zip(header, fields):
        if cell in ("", "NA"):
            continue
        try:
            row[name] = float(cell)
        except ValueError:
            row[name] = cell
    try:
        row["epoch"] = int(fields[header.index("epoch")])
    except ValueError:
        return None
    return row


def logged_history(log_path) -> dict:
    """``{name: [value per epoch]}`` from a training log, ``{}`` when there is none.

    A resumed run appends to the log, so this is the whole run's history where ``fit`` returns
    only the epochs of the last process. An epoch logged twice (a run resumed from the state
    one epoch back) keeps its last row; non-numeric columns are left out, and a row that does
    not parse (a torn last line) is left out whole (``read_training_log``), never a column;
    a value not logged in an epoch is NaN."""
    columns, rows = read_training_log(log_path)
    by_epoch = {row["epoch"]: row for row in rows}
    ordered = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    if not ordered:
        return {}
    return {name: [float(row.get(name, math.nan)) for row in ordered]
            for name in columns if name != "epoch"}
