"""A run's phases: each trained once, checked, saved atomically and recorded in ``phases.json``
with the settings it depends on, so a rerun loads a finished phase instead of training it again.
``trained_phase`` is the one skeleton every phase of every experiment runs."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from keras_latent.errors import RunError
from keras_latent.io import write_json_atomic
from keras_latent.models import ModelFileError, load_model, save_model_atomic
from keras_latent.evaluation.training_log import logged_history
from keras_latent.paradigms.callbacks import discard_resume_state
from keras_latent.paradigms.fitting import TrainingRun


class TrainingDiverged(RunError):
    """Training produced a non-finite loss or weights; nothing was saved over a good file."""


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


#: Which phases of an experiment have finished in its output folder, and with what settings.
PHASES_FILE = "phases.json"


def _jsonable(value):
    """``value`` as it reads back from JSON (tuples as lists...), so saved and current settings
    compare equal; what JSON cannot hold is compared by its ``str``."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def training_settings(splits, config, **settings) -> dict:
    """What a phase's result depends on: the data, the model's settings and the optimisation
    (not verbosity, callbacks, device strategy or where checkpoints go)."""
    ignored = {"output_dir", "keep_resume_state", "verbose", "strategy", "callbacks",
               "jit_compile", "precision", "mixed_precision"}
    optimisation = {field.name: getattr(config, field.name)
                    for field in dataclasses.fields(config) if field.name not in ignored}
    data = {"dataset": splits.name, "image_shape": list(splits.image_shape),
            "sizes": [len(splits.train), len(splits.val), len(splits.test)]}
    return _jsonable({"data": data, **settings, "config": optimisation,
                      "dtype_policy": config.dtype_policy})


def _changed(before, now, prefix=""):
    """The dotted names of the settings that differ, e.g. ``["config.epochs"]``."""
    if not (isinstance(before, dict) and isinstance(now, dict)):
        return [] if before == now else [prefix.rstrip(".") or "settings"]
    return [name for key in sorted(set(before) | set(now))
            for name in _changed(before.get(key), now.get(key), f"{prefix}{key}.")]


class Phases:
    """Resume an experiment phase by phase: a phase that finished (its model saved and recorded
    in ``phases.json`` with its settings) is loaded on a rerun instead of trained again.

    A phase that has to train makes the records of the phases after it void (they used its
    old result); records of another method's run in the same folder are ignored."""

    def __init__(self, output_dir, method, order):
        self.output_dir, self.method, self.order = Path(output_dir), method, list(order)
        self.path = self.output_dir / PHASES_FILE
        try:
            saved = json.loads(self.path.read_text())
        except (OSError, ValueError):
            saved = {}
        phases = saved.get("phases") if isinstance(saved, dict) else None
        same_run = isinstance(phases, dict) and saved.get("method") == method
        self.done = phases if same_run else {}

    def load(self, name, model_file, settings, checkpoints=None):
        """The ``TrainingRun`` of phase ``name`` finished earlier with these ``settings``, or
        None when it has to train (the reason is printed when there was a record)."""
        path, entry = self.output_dir / model_file, self.done.get(name)
        if isinstance(entry, dict) and settings in (entry.get("settings"), entry.get("asked")):
            try:
                model = load_model(path)
            except ModelFileError as error:
                print(f"{name}: {error}; training it again")
            else:
                print(f"{name}: already trained by an earlier run with the same settings; "
                      f"loaded {path} instead of training again (delete {self.path} to "
                      "retrain)")
                history = {}
                if checkpoints is not None:
                    discard_resume_state(checkpoints)  # left by a kill just before the record
                    history = logged_history(Path(checkpoints) / "training_log.csv")
                return TrainingRun(model, history)
        elif isinstance(entry, dict):
            changed = ", ".join(_changed(entry.get("settings"), settings)) or "settings"
            print(f"{name}: {path} was trained with other settings ({changed}); training it "
                  "again")
        self._forget_from(name)
        return None

    def finished(self, name, model_file, settings, checkpoints=None, epochs=None) -> None:
        """Record phase ``name`` as done (its model is saved); its resume state is then
        no longer needed and is deleted.

        ``epochs``, those its model was trained, go into its settings: a rerun with fewer
        ``--epochs`` than a resumed state had finished records what that model is, and keeps
        the settings it asked for as ``asked`` (the same command still loads it)."""
        self._forget_from(name)
        entry = {"model": model_file, "settings": settings,
                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if epochs is not None:
            entry["epochs"] = epochs
            trained = _with_epochs(settings, epochs)
            if trained != settings:
                entry["settings"], entry["asked"] = trained, settings
        self.done[name] = entry
        self._write()
        if checkpoints is not None:
            discard_resume_state(checkpoints)

    def epochs(self, **runs) -> dict:
        """``{phase: epochs its model was trained}`` for the report: each run's history's
        length, else its record's."""
        counts = {}
        for name, run in runs.items():
            entry = self.done.get(name)
            counts[name] = (len(run.history.get("loss", []))
                            or (entry.get("epochs") if isinstance(entry, dict) else None))
        return counts

    def _forget_from(self, name):
        later = set(self.order[self.order.index(name):])
        if later & set(self.done):
            self.done = {key: value for key, value in self.done.items() if key not in later}
            self._write()

    def _write(self):
        write_json_atomic(self.path, {"method": self.method, "phases": self.done})


def _with_epochs(settings, epochs):
    """``settings`` (of ``training_settings``) with ``config.epochs`` set to ``epochs``."""
    config = settings.get("config")
    if not isinstance(config, dict) or epochs is None:
        return settings
    return {**settings, "config": {**config, "epochs": int(epochs)}}


def _epochs_trained(run) -> int | None:
    """The epochs ``run``'s model was trained, from its whole history (a resumed run's is read
    back from its log): more than ``--epochs`` when a rerun asked for fewer than a resumed
    state had finished."""
    return len(run.history.get("loss", [])) or None


class Timer:
    """Wall-clock seconds per phase of an experiment, for the report's run metadata."""

    def __init__(self):
        self.phases, self._start = {}, time.perf_counter()

    def lap(self, name):
        now = time.perf_counter()
        self.phases[name] = now - self._start
        self._start = now


def trained_phase(phases, name, model_file, settings, train, *, what, checkpoints=None,
                  good_file=None):
    """The ``TrainingRun`` of phase ``name``: loaded when an earlier run finished it with these
    ``settings``, else ``train()``ed, checked finite (``what`` names it in the error), saved
    atomically as ``model_file`` and recorded. ``checkpoints``: the phase's checkpoint folder,
    whose ``best.keras`` is the good file a divergence points to unless ``good_file`` says."""
    run = phases.load(name, model_file, settings, checkpoints)
    if run is None:
        run = train()
        if good_file is None and checkpoints is not None:
            good_file = Path(checkpoints) / "best.keras"
        check_finite(run, what, good_file)
        save_model_atomic(run.model, phases.output_dir / model_file)
        phases.finished(name, model_file, settings, checkpoints, epochs=_epochs_trained(run))
    return run
