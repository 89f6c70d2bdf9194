"""Loading and saving `.keras` files with errors that name the file, and atomic saves.

`keras.saving.load_model` on a bad path fails deep inside zipfile/h5py; a user needs to know
which file is wrong and what to do about it.
"""

import zipfile
from pathlib import Path

import keras

from keras_latent.flags import model_file_problem
# The atomic-write helpers live in keras_latent.io; imported here for the callers that
# always found them in this module.
from keras_latent.io import (  # noqa: F401
    LEFTOVER_PATTERNS,
    atomic_path,
    copy_atomic,
    remove_leftovers,
    write_json_atomic,
)


class ModelFileError(ValueError):
    """A model file that is missing, not a `.keras` archive, or corrupt."""


def load_model(path, *, compile=True):
    """Load a `.keras` file saved by this project, on any backend (the custom classes are
    registered first)."""
    import keras_latent.serializables  # noqa: F401  (here: it imports this module's package)

    path = Path(path)
    problem = model_file_problem(path)  # missing, a folder, not .keras: the commands' check
    if problem:
        raise ModelFileError(problem)
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path} is not a valid .keras archive (truncated or corrupt zip); re-save the model")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            bad_member = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelFileError(f"{path} is a corrupt .keras archive ({err}); re-save the model") from err
    if bad_member is not None or "config.json" not in names:
        raise ModelFileError(f"{path} is a corrupt .keras archive (damaged or missing config.json); re-save the model")
    try:
        return keras.saving.load_model(path, compile=compile)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named, cause chained
        raise ModelFileError(f"could not load model from {path}: {type(err).__name__}: {err}") from err


def float32_copy(model):
    """``model`` itself when it computes in float32, else a float32 twin with its weights.

    A model trained under a mixed policy (bfloat16 / float16) would otherwise save that policy
    and compute in it wherever it is loaded: slowly, or not at all, on a machine without the
    hardware for it. Weights are float32 under mixed policies, so they copy over exactly; the
    compile settings (loss, metrics, a fresh optimiser) come along, the optimiser's state not.
    """
    config = keras.saving.serialize_keras_object(model)
    if not _uses_mixed_policy(config):
        return model
    copy = keras.saving.deserialize_keras_object(_as_float32(config))
    copy.set_weights(model.get_weights())
    for layer in _sublayers(copy):
        if hasattr(layer, "finalize_state"):  # e.g. Normalization: its mean and variance
            layer.finalize_state()  # are read from the variables set_weights just assigned
    if getattr(model, "compiled", False) and model.get_compile_config():
        copy.compile_from_config(model.get_compile_config())
    return copy


def _sublayers(layer):
    for child in getattr(layer, "layers", ()):
        yield child
        yield from _sublayers(child)


def _uses_mixed_policy(config) -> bool:
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and str(config["config"]["name"]).startswith("mixed_"):
            return True
        return any(_uses_mixed_policy(value) for value in config.values())
    if isinstance(config, list):
        return any(_uses_mixed_policy(value) for value in config)
    return False


def _as_float32(config):
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and str(config["config"]["name"]).startswith("mixed_"):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _as_float32(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_as_float32(value) for value in config]
    return config


def save_model_atomic(model, path):
    """Save to a temp file in the same folder, then `os.replace`: a crash never leaves a half file.

    A model trained under a mixed policy is saved as its float32 twin (``float32_copy``), so
    the file loads and predicts in float32 on any machine.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ModelFileError(f"{path}: model files must end in .keras (e.g. {path.with_suffix('.keras')})")
    with atomic_path(path, suffix=".tmp.keras") as temporary:
        to_save = float32_copy(model) if isinstance(model, keras.Model) else model
        build_optimizer(to_save)
        to_save.save(temporary)
    return path


def build_optimizer(model) -> None:
    """Create the variables of a compiled, built model's optimizer if it has none yet.

    ``load_model`` compiles and then builds the optimizer before restoring its state, so an
    optimizer saved unbuilt (one variable, its step count) cannot be restored and loading
    warns "Skipping variable loading for optimizer". Built before saving, the file holds
    exactly what ``load_model`` restores (e.g. a probe's ``Classifier``, compiled but never
    fitted).
    """
    optimizer = getattr(model, "optimizer", None)
    if getattr(model, "built", False) and optimizer is not None and not optimizer.built:
        optimizer.build(model.trainable_variables)
