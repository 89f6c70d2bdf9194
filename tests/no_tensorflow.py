"""Imported first in a child Python: from then on TensorFlow cannot be imported there, as on a
machine that has only JAX (``ModuleNotFoundError``). Not ``sys.modules["tensorflow"] = None``:
Keras reads a ``"tensorflow"`` key in ``sys.modules`` as TensorFlow being loaded."""

import importlib.abc
import sys

BLOCKED = ("tensorflow", "tensorflow_datasets")


class _NoTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


if not any(isinstance(finder, _NoTensorFlow) for finder in sys.meta_path):
    sys.meta_path.insert(0, _NoTensorFlow())
