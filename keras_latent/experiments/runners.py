"""The experiments the recipes run: each trains one paradigm phase by phase
(``phases.trained_phase``: resumed, checked, saved atomically) and writes the evaluation report
into the run folder (metrics.json, PNGs, report.md). Recipes and the comparison call these, so a
method is defined once whichever way it is run.

The recipes' flags, data loading and closing summary live with the recipes
(``recipes/_plumbing.py``); this module takes plain arguments and raises, never exits.
"""

from __future__ import annotations

from pathlib import Path

from keras_latent import paradigms
from keras_latent.data import mirrors_images
from keras_latent.evaluation import evaluate_model
from keras_latent.evaluation.metadata import training_metadata
from keras_latent.experiments.phases import (
    Phases,
    Timer,
    check_finite,
    trained_phase,
    training_settings,
)
from keras_latent.models import save_model_atomic


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


def autoencoder_experiment(splits, output_dir, *, architecture, latent_dim, config, loss="mae",
                           augment=None, probe=None, probe_config=None, tsne=2000,
                           method="autoencoder + frozen probe") -> dict:
    """Autoencoder, then a classifier head on the frozen encoder. The report gives the probe's
    accuracy, and on datasets of mirror-symmetric classes also with flip test-time augmentation.

    ``probe`` is ``train_probe``'s head choice, e.g. ``{"head": "mlp", "head_kwargs": {...}}``
    (default: linear). The keyword arguments are the method's settings one by one, as the
    recipes' tables name them and as ``phases.json`` records them (a rerun with any one
    changed trains again); bundling them would hide which one changed."""
    output_dir, timer = Path(output_dir), Timer()
    config = _in_run_folder(config, output_dir)
    phases = Phases(output_dir, method, ["autoencoder", "probe"])
    checkpoints = output_dir / "checkpoints"
    settings = training_settings(splits, config, architecture=architecture,
                                 latent_dim=latent_dim, loss=loss, augment=augment)
    # Saved before the probe freezes the (shared) encoder, so the file resumes training.
    run = trained_phase(
        phases, "autoencoder", "autoencoder.keras", settings, what="autoencoder",
        checkpoints=checkpoints,
        train=lambda: paradigms.train_autoencoder(
            splits, architecture=architecture, latent_dim=latent_dim, loss=loss,
            augment=augment, config=_phase_config(config, checkpoints)))
    timer.lap("training")
    probe_run = _probe_phase(phases, run.model.encoder, splits, probe, probe_config, config,
                             output_dir / "autoencoder.keras")
    timer.lap("probe")
    return _report(run.model, splits, output_dir, method, run.history, tsne, probe_run.model,
                   config=config, phases=timer.phases, codes=probe_run.codes,
                   epochs=phases.epochs(autoencoder=run, probe=probe_run))


def classifier_experiment(splits, output_dir, *, architecture, latent_dim, config, head="linear",
                          head_kwargs=None, augment="light", num_labels=None, tsne=2000,
                          method="classification-guided") -> dict:
    """Encoder and head trained together on the labels; the report gives the accuracy, and on
    datasets of mirror-symmetric classes also with flip test-time augmentation. Settings one by
    one, as ``autoencoder_experiment``'s."""
    output_dir, timer = Path(output_dir), Timer()
    config = _in_run_folder(config, output_dir)
    phases = Phases(output_dir, method, ["classifier"])
    checkpoints = output_dir / "checkpoints"
    settings = training_settings(splits, config, architecture=architecture,
                                 latent_dim=latent_dim, head=head, head_kwargs=head_kwargs,
                                 augment=augment, num_labels=num_labels)
    run = trained_phase(
        phases, "classifier", "classifier.keras", settings, what="classifier",
        checkpoints=checkpoints,
        train=lambda: paradigms.train_classifier(
            splits, architecture=architecture, latent_dim=latent_dim, head=head,
            head_kwargs=head_kwargs, augment=augment, num_labels=num_labels,
            config=_phase_config(config, checkpoints)))
    timer.lap("training")
    return _report(run.model, splits, output_dir, method, run.history, tsne,
                   config=config, phases=timer.phases, epochs=phases.epochs(classifier=run))


def simclr_experiment(splits, output_dir, *, architecture, latent_dim, config, temperature=0.5,
                      reconstruction_weight=0.0, probe=None, probe_config=None, num_labels=None,
                      tsne=2000, method=None, **simclr_kwargs) -> dict:
    """SimCLR (or the contrastive + denoising hybrid), then a frozen probe (``probe`` as in
    ``autoencoder_experiment``). Settings one by one, as ``autoencoder_experiment``'s."""
    output_dir, timer = Path(output_dir), Timer()
    config = _in_run_folder(config, output_dir)
    method = method or ("SimCLR + denoising, frozen probe" if reconstruction_weight
                        else "SimCLR + frozen probe")
    phases = Phases(output_dir, method, ["simclr", "probe"])
    checkpoints = output_dir / "checkpoints"
    settings = training_settings(splits, config, architecture=architecture,
                                 latent_dim=latent_dim, temperature=temperature,
                                 reconstruction_weight=reconstruction_weight, **simclr_kwargs)
    run = trained_phase(  # saved before the probe freezes the encoder
        phases, "simclr", "simclr.keras", settings, what="SimCLR", checkpoints=checkpoints,
        train=lambda: paradigms.train_simclr(
            splits, architecture=architecture, latent_dim=latent_dim, temperature=temperature,
            reconstruction_weight=reconstruction_weight,
            config=_phase_config(config, checkpoints), **simclr_kwargs))
    timer.lap("training")
    probe_run = _probe_phase(phases, run.model.encoder, splits, probe, probe_config, config,
                             output_dir / "simclr.keras", num_labels=num_labels)
    timer.lap("probe")
    return _report(run.model, splits, output_dir, method, run.history, tsne, probe_run.model,
                   config=config, phases=timer.phases, codes=probe_run.codes,
                   epochs=phases.epochs(simclr=run, probe=probe_run))


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
    state kept until the phase's model is saved and recorded (``Phases.finished``)."""
    return config.replace(output_dir=str(checkpoints), keep_resume_state=True)


def _probe_phase(phases, encoder, splits, probe, probe_config, config, encoder_file,
                 num_labels=None):
    """The frozen-encoder probe of an experiment, trained and saved as ``probe.keras`` or
    loaded when an earlier run finished it with the same settings (and the same encoder)."""
    probe_config = paradigms.probe_config(config, probe_config)
    settings = training_settings(splits, probe_config, probe=probe, num_labels=num_labels)
    return trained_phase(
        phases, "probe", "probe.keras", settings, what="probe", good_file=encoder_file,
        train=lambda: paradigms.train_probe(encoder, splits, num_labels=num_labels,
                                            **(probe or {}), config=probe_config))
