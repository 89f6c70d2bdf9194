"""The experiments the recipes run: each trains one paradigm, saves its `.keras` models
atomically, resumes phase by phase, and writes the evaluation report into the run folder.

The recipes' flags, data loading and closing summary live with the recipes
(``recipes/_plumbing.py``); this module takes plain arguments and raises, never exits.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

from keras_latent import paradigms
from keras_latent.data import mirrors_images
from keras_latent.evaluation import evaluate_model
from keras_latent.evaluation.metadata import training_metadata
from keras_latent.errors import RunError
from keras_latent.io import write_json_atomic
from keras_latent.models import ModelFileError, load_model, save_model_atomic
from keras_latent.paradigms.callbacks import discard_resume_state, logged_history
from keras_latent.paradigms.fitting import TrainingRun


class TrainingDiverged(RunError):
    """Training produced a non-finite loss or weights; nothing was saved over a good file."""


def tensorboard_subfolder(config, name: str):
    """``config`` logging to TensorBoard under ``<its folder>/name``: for a recipe that runs a
    phase several times (a sweep), so that each run gets its own curves."""
    if config.tensorboard_dir is None:
        return config
    return config.replace(tensorboard=str(config.tensorboard_dir / name))


def _in_run_folder(config, output_dir):
    """``tensorboard=True`` made concrete: TensorBoard logs in ``output_dir/tensorboard`` (the
    run folder), whatever folder each phase keeps its checkpoints in."""
    if config.tensorboard is True:
        return config.replace(tensorboard=str(Path(output_dir) / "tensorboard"))
    return config


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


def _report(model, splits, output_dir, method, history, tsne, classifier=None, config=None,
            phases=None, codes=None, epochs=None):
    """The evaluation of every experiment, seeded with the run's seed (so ``--seed 1`` says
    seed 1 throughout); a head's accuracy also with flip test-time augmentation where mirror
    images are natural ones (not for digits). ``epochs``: ``{phase: epochs trained}``, kept
    in the run's metadata (a resumed state may have trained more than ``--epochs`` asked)."""
    metadata = training_metadata(config, phases)
    if epochs:
        metadata["epochs"] = epochs
    return evaluate_model(model, splits, output_dir, method=method, history=history,
                          tsne_sample=tsne, classifier=classifier,
                          seed=config.seed if config is not None else 0,
                          flip_tta=mirrors_images(splits.name), metadata=metadata, codes=codes)


#: Which phases of an experiment have finished in its output folder, and with what settings.
PHASES_FILE = "phases.json"


def _jsonable(value):
    """``value`` as it reads back from JSON (tuples as lists...), so saved and current settings
    compare equal; what JSON cannot hold is compared by its ``str``."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _training_settings(splits, config, **settings) -> dict:
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


class _Phases:
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

    def epochs(self, name, run) -> int | None:
        """The epochs phase ``name``'s model was trained: its history's, else its record's."""
        logged = len(run.history.get("loss", []))
        entry = self.done.get(name)
        return logged or (entry.get("epochs") if isinstance(entry, dict) else None)

    def _forget_from(self, name):
        later = set(self.order[self.order.index(name):])
        if later & set(self.done):
            self.done = {key: value for key, value in self.done.items() if key not in later}
            self._write()

    def _write(self):
        write_json_atomic(self.path, {"method": self.method, "phases": self.done})


def _with_epochs(settings, epochs):
    """``settings`` (of ``_training_settings``) with ``config.epochs`` set to ``epochs``."""
    config = settings.get("config")
    if not isinstance(config, dict) or epochs is None:
        return settings
    return {**settings, "config": {**config, "epochs": int(epochs)}}


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
    """Autoencoder, then a classifier head on the frozen encoder. The report gives the probe's
    accuracy, and on datasets of mirror-symmetric classes also with flip test-time augmentation.

    ``probe`` is ``train_probe``'s head choice, e.g. ``{"head": "mlp", "head_kwargs": {...}}``
    (default: linear). The keyword arguments are the method's settings one by one, as the
    recipes' tables name them and as ``phases.json`` records them (a rerun with any one
    changed trains again); bundling them would hide which one changed."""
    output_dir, timer = Path(output_dir), _Timer()
    config = _in_run_folder(config, output_dir)
    phases = _Phases(output_dir, method, ["autoencoder", "probe"])
    checkpoints = output_dir / "checkpoints"
    settings = _training_settings(splits, config, architecture=architecture,
                                  latent_dim=latent_dim, loss=loss, augment=augment)
    run = phases.load("autoencoder", "autoencoder.keras", settings, checkpoints)
    if run is None:
        run = paradigms.train_autoencoder(
            splits, architecture=architecture, latent_dim=latent_dim, loss=loss,
            augment=augment, config=_phase_config(config, checkpoints),
        )
        check_finite(run, "autoencoder", checkpoints / "best.keras")
        # Saved before the probe freezes the (shared) encoder, so the file resumes training.
        save_model_atomic(run.model, output_dir / "autoencoder.keras")
        phases.finished("autoencoder", "autoencoder.keras", settings, checkpoints,
                        epochs=_epochs_trained(run))
    timer.lap("training")
    probe_run = _probe_phase(phases, run.model.encoder, splits, probe, probe_config, config,
                             output_dir / "autoencoder.keras")
    timer.lap("probe")
    return _report(run.model, splits, output_dir, method, run.history, tsne, probe_run.model,
                   config=config, phases=timer.phases, codes=probe_run.codes,
                   epochs=_phase_epochs(phases, autoencoder=run, probe=probe_run))


def classifier_experiment(splits, output_dir, *, architecture, latent_dim, config, head="linear",
                          head_kwargs=None, augment="light", num_labels=None, tsne=2000,
                          method="classification-guided") -> dict:
    """Encoder and head trained together on the labels; the report gives the accuracy, and on
    datasets of mirror-symmetric classes also with flip test-time augmentation. Settings one by
    one, as ``autoencoder_experiment``'s."""
    output_dir, timer = Path(output_dir), _Timer()
    config = _in_run_folder(config, output_dir)
    phases = _Phases(output_dir, method, ["classifier"])
    checkpoints = output_dir / "checkpoints"
    settings = _training_settings(splits, config, architecture=architecture,
                                  latent_dim=latent_dim, head=head, head_kwargs=head_kwargs,
                                  augment=augment, num_labels=num_labels)
    run = phases.load("classifier", "classifier.keras", settings, checkpoints)
    if run is None:
        run = paradigms.train_classifier(
            splits, architecture=architecture, latent_dim=latent_dim, head=head,
            head_kwargs=head_kwargs, augment=augment, num_labels=num_labels,
            config=_phase_config(config, checkpoints),
        )
        check_finite(run, "classifier", checkpoints / "best.keras")
        save_model_atomic(run.model, output_dir / "classifier.keras")
        phases.finished("classifier", "classifier.keras", settings, checkpoints,
                        epochs=_epochs_trained(run))
    timer.lap("training")
    return _report(run.model, splits, output_dir, method, run.history, tsne,
                   config=config, phases=timer.phases,
                   epochs=_phase_epochs(phases, classifier=run))


def simclr_experiment(splits, output_dir, *, architecture, latent_dim, config, temperature=0.5,
                      reconstruction_weight=0.0, probe=None, probe_config=None, num_labels=None,
                      tsne=2000, method=None, **simclr_kwargs) -> dict:
    """SimCLR (or the contrastive + denoising hybrid), then a frozen probe (``probe`` as in
    ``autoencoder_experiment``). Settings one by one, as ``autoencoder_experiment``'s."""
    output_dir, timer = Path(output_dir), _Timer()
    config = _in_run_folder(config, output_dir)
    method = method or ("SimCLR + denoising, frozen probe" if reconstruction_weight
                        else "SimCLR + frozen probe")
    phases = _Phases(output_dir, method, ["simclr", "probe"])
    checkpoints = output_dir / "checkpoints"
    settings = _training_settings(splits, config, architecture=architecture,
                                  latent_dim=latent_dim, temperature=temperature,
                                  reconstruction_weight=reconstruction_weight, **simclr_kwargs)
    run = phases.load("simclr", "simclr.keras", settings, checkpoints)
    if run is None:
        run = paradigms.train_simclr(
            splits, architecture=architecture, latent_dim=latent_dim, temperature=temperature,
            reconstruction_weight=reconstruction_weight,
            config=_phase_config(config, checkpoints), **simclr_kwargs,
        )
        check_finite(run, "SimCLR", checkpoints / "best.keras")
        save_model_atomic(run.model, output_dir / "simclr.keras")  # before the probe freezes it
        phases.finished("simclr", "simclr.keras", settings, checkpoints,
                        epochs=_epochs_trained(run))
    timer.lap("training")
    probe_run = _probe_phase(phases, run.model.encoder, splits, probe, probe_config, config,
                             output_dir / "simclr.keras", num_labels=num_labels)
    timer.lap("probe")
    return _report(run.model, splits, output_dir, method, run.history, tsne, probe_run.model,
                   config=config, phases=timer.phases, codes=probe_run.codes,
                   epochs=_phase_epochs(phases, simclr=run, probe=probe_run))


def random_baseline_experiment(splits, output_dir, *, architecture, latent_dim, config,
                               probe=None, probe_config=None, num_labels=None, tsne=2000,
                               method="random encoder + frozen probe") -> dict:
    """The probe on an untrained encoder: what the architecture alone gives."""
    output_dir = Path(output_dir)
    run = paradigms.train_random_baseline(
        splits, architecture=architecture, latent_dim=latent_dim, num_labels=num_labels,
        **(probe or {}),
        config=paradigms.probe_config(_in_run_folder(config, output_dir), probe_config),
    )
    check_finite(run, "probe")
    save_model_atomic(run.model, output_dir / "probe.keras")
    # Reported as the encoder with its probe, like the trained encoders' rows it sits beside.
    return _report(run.model.encoder, splits, output_dir, method, run.history, tsne, run.model,
                   config=config, codes=run.codes)


def _phase_config(config, checkpoints):
    """The config of a training phase: checkpoints and resume state in ``checkpoints``, the
    state kept until the phase's model is saved and recorded (``_Phases.finished``)."""
    return config.replace(output_dir=str(checkpoints), keep_resume_state=True)


def _probe_phase(phases, encoder, splits, probe, probe_config, config, encoder_file,
                 num_labels=None):
    """The frozen-encoder probe of an experiment, trained and saved as ``probe.keras`` or
    loaded when an earlier run finished it with the same settings (and the same encoder)."""
    probe_config = paradigms.probe_config(config, probe_config)
    settings = _training_settings(splits, probe_config, probe=probe, num_labels=num_labels)
    run = phases.load("probe", "probe.keras", settings)
    if run is None:
        run = paradigms.train_probe(encoder, splits, num_labels=num_labels, **(probe or {}),
                                    config=probe_config)
        check_finite(run, "probe", encoder_file)
        save_model_atomic(run.model, phases.output_dir / "probe.keras")
        phases.finished("probe", "probe.keras", settings, epochs=_epochs_trained(run))
    return run


def _epochs_trained(run) -> int | None:
    """The epochs ``run``'s model was trained, from its whole history (a resumed run's is read
    back from its log): more than ``--epochs`` when a rerun asked for fewer than a resumed
    state had finished."""
    return len(run.history.get("loss", [])) or None


def _phase_epochs(phases, **runs) -> dict:
    """``{phase: epochs trained}`` of an experiment's phases, for its report."""
    return {name: phases.epochs(name, run) for name, run in runs.items()}
