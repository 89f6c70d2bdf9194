"""keras-latent: learn and judge latent representations of images with Keras 3.

Importing the package registers every custom layer and model with Keras, so a saved
``.keras`` file loads with plain ``keras.saving.load_model`` and no ``custom_objects``.

The import itself is light: TensorFlow (seconds to start) is not loaded until something needs
Keras, so a command's ``--help`` or a bad flag answers at once. Once Keras is imported (by this
package's modules or by the caller) every submodule is imported and every custom class
registered, before control returns to the caller.
"""

import importlib
import importlib.abc
import os
import sys

# Model code is backend-neutral, but the data pipelines and SimCLR's train_step use TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

#: What ``import keras_latent`` gives as attributes, each imported on first use.
SUBPACKAGES = ("data", "losses", "models", "schedules", "paradigms", "evaluation")


def __getattr__(name):
    if name in SUBPACKAGES:
        return importlib.import_module(f"keras_latent.{name}")
    raise AttributeError(f"module 'keras_latent' has no attribute {name!r}")


def _register_everything():
    """Import every submodule: each custom Keras class registers itself on import."""
    for name in SUBPACKAGES:
        importlib.import_module(f"keras_latent.{name}")


class _StderrMuted:
    """File descriptor 2 sent to /dev/null: TensorFlow's C++ start-up lines (oneDNN notice, CUDA
    probing, "All log messages before absl::InitializeLog()") are written before any log level
    applies, so TF_CPP_MIN_LOG_LEVEL cannot hide them. ``KERAS_LATENT_VERBOSE=1`` shows them."""

    def __enter__(self):
        self.saved = None
        if os.environ.get("KERAS_LATENT_VERBOSE"):
            return self
        try:
            self.saved, self.devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        except OSError:
            self.saved = None
            return self
        sys.stderr.flush()
        os.dup2(self.devnull, 2)
        return self

    def __exit__(self, *exc_info):
        if self.saved is not None:
            os.dup2(self.saved, 2)
            os.close(self.saved)
            os.close(self.devnull)


def _tensorflow_loaded(module):
    """After TensorFlow's own import (stderr still muted): list the devices, which prints the
    CUDA probing lines, and quiet absl's Python logging."""
    try:
        module.config.list_physical_devices("GPU")
    except Exception:  # noqa: BLE001 - a broken install fails visibly on first use instead
        pass
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


class _Loader(importlib.abc.Loader):
    """Runs another loader's ``exec_module`` and tells the hook when the import is done."""

    def __init__(self, inner, hook):
        self.inner, self.hook = inner, hook

    def __getattr__(self, name):  # get_code (runpy), get_source, is_package, resources...
        return getattr(self.inner, name)

    def create_module(self, spec):
        return self.inner.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.inner  # invisible from here on
        self.hook.depth += 1
        try:
            if module.__name__ == "tensorflow":
                with _StderrMuted():
                    self.inner.exec_module(module)
                    _tensorflow_loaded(module)
            else:
                self.inner.exec_module(module)
        finally:
            self.hook.depth -= 1
        if self.hook.depth == 0 and "keras" in sys.modules:
            self.hook.finish()


class _RegisterWhenKerasLoads(importlib.abc.MetaPathFinder):
    """Watches the imports of ``keras``, ``tensorflow`` and this package's modules.

    TensorFlow's import runs with stderr muted; when the outermost of these imports has finished
    and Keras is loaded, the hook removes itself and imports every submodule, so the custom
    classes are registered however Keras came to be imported (``import keras_latent; import
    keras; keras.saving.load_model(...)`` included)."""

    def __init__(self):
        self.depth = 0

    def find_spec(self, name, path=None, target=None):
        if name not in ("keras", "tensorflow") and not name.startswith("keras_latent."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader, self)
        return spec

    def finish(self):
        if self in sys.meta_path:
            sys.meta_path.remove(self)
            _register_everything()


def _install():
    if "keras" in sys.modules:  # nothing left to defer: register now, as the caller expects
        _register_everything()
        return
    if not any(isinstance(finder, _RegisterWhenKerasLoads) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterWhenKerasLoads())


_install()
