"""The Keras private members the atomic checkpoint callbacks (``paradigms/callbacks.py``)
override or read exist in the installed Keras, and setup.cfg caps Keras at the versions they were
checked on: a Keras release that renames one fails here, in CI, before a user's resume does."""

import configparser
import re
from pathlib import Path

import keras
import pytest

#: Checked on these Keras releases (the last one is the cap in setup.cfg: raise both together,
#: after this test passes on the new release).
CHECKED_ON = ("3.15.1",)
SETUP_CFG = Path(__file__).resolve().parents[1] / "setup.cfg"

#: Methods AtomicModelCheckpoint / ResumableBackup override or call on their Keras bases.
METHODS = {
    keras.callbacks.ModelCheckpoint: ("_save_model", "_get_file_path", "_should_save_model",
                                      "_is_improvement"),
    keras.callbacks.BackupAndRestore: ("_save_model", "on_train_begin", "on_epoch_end"),
}
#: Attributes they read on a Keras instance.
ATTRIBUTES = {
    "backup": ("_weights_path", "_training_metadata_path", "_prev_weights_path",
               "_prev_training_metadata_path", "_current_epoch", "_last_batch_seen",
               "double_checkpoint"),
    "model": ("_initial_epoch",),
}


def _keras_cap():
    config = configparser.ConfigParser()
    config.read(SETUP_CFG)
    requirement = next(line for line in config["options"]["install_requires"].split()
                       if line.startswith("keras") and not line.startswith("keras-"))
    match = re.search(r"<\s*([\d.]+)", requirement)
    assert match, f"setup.cfg must cap Keras ({requirement!r}): see CHECKED_ON here"
    return tuple(int(part) for part in match.group(1).split("."))


def test_setup_cfg_caps_keras_just_above_the_checked_releases():
    newest = tuple(int(part) for part in CHECKED_ON[-1].split(".")[:2])
    assert _keras_cap() == (newest[0], newest[1] + 1)


def test_installed_keras_is_within_the_checked_range():
    installed = tuple(int(part) for part in re.findall(r"\d+", keras.__version__)[:2])
    assert installed < _keras_cap()


@pytest.mark.parametrize("base, names", METHODS.items(), ids=lambda v: getattr(v, "__name__", ""))
def test_overridden_keras_methods_exist(base, names):
    missing = [name for name in names if not callable(getattr(base, name, None))]
    assert not missing, f"Keras {keras.__version__} {base.__name__} lacks {missing}"


def test_read_keras_attributes_exist(tmp_path):
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    model.fit(keras.ops.ones((4, 2)), keras.ops.ones((4, 1)), epochs=1, verbose=0,
              callbacks=[backup])
    objects = {"backup": backup, "model": model}
    missing = [f"{kind}.{name}" for kind, names in ATTRIBUTES.items() for name in names
               if not hasattr(objects[kind], name)]
    assert not missing, f"Keras {keras.__version__} lacks {missing}"
