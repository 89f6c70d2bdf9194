"""Atomic file writes: a reader, a kill or a full disk never leaves half a file.

Every file the project writes (models, checkpoints, JSON state, figures, reports, the dataset
cache) goes to a temporary file in the destination's folder and is renamed onto it with
``os.replace``, which is atomic within one file system: the destination is always the old file
or the new one. This module is that pattern's one home.

Standard library only (NumPy is imported by the one function that needs it), so importing it
never loads TensorFlow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from pathlib import Path

from keras_latent.errors import FolderInUseError

__all__ = [
    "LEFTOVER_PATTERNS",
    "atomic_path",
    "copy_atomic",
    "lock_folder",
    "remove_leftovers",
    "save_npz_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

#: What a killed ``atomic_path`` writer can leave behind (every temporary name holds ``.tmp.``);
#: ``.partial.keras``: older checkpoints.
LEFTOVER_PATTERNS = (".*.tmp.*", ".*.partial.keras")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path beside ``path`` to write to; renamed onto ``path`` on success.

    ``suffix`` ends the temporary name, for writers that add or check an extension (``np.savez``
    appends ``.npz``, Keras wants ``.keras`` or ``.weights.h5``). An exception inside the block
    removes the temporary file and leaves ``path`` as it was. The new file gets the mode any
    other new file would (``0666 & ~umask``: ``0644`` under the usual umask 022), not
    ``mkstemp``'s private ``0600``. Missing parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.tmp.", suffix=suffix,
                                        dir=path.parent)
    os.close(handle)
    try:
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def write_text_atomic(path, text: str) -> Path:
    """``text`` as UTF-8 through ``atomic_path``."""
    with atomic_path(path) as temporary:
        Path(temporary).write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path, obj) -> Path:
    """``obj`` as indented, key-sorted JSON with a final newline, through ``atomic_path``.

    Its temporary name holds ``.tmp.``, so ``remove_leftovers`` clears what a kill left.
    """
    with atomic_path(path, suffix=".tmp.json") as temporary:
        Path(temporary).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n",
                                   encoding="utf-8")
    return Path(path)


def save_npz_atomic(path, **arrays) -> Path:
    """``np.savez(path, **arrays)`` through ``atomic_path``."""
    import numpy as np

    with atomic_path(path, suffix=".npz") as temporary:
        np.savez(temporary, **arrays)
    return Path(path)


def copy_atomic(source, destination) -> Path:
    """``shutil.copyfile`` through ``atomic_path``: ``destination`` is the old or the new file."""
    with atomic_path(destination, suffix=".tmp.copy") as temporary:
        shutil.copyfile(source, temporary)
    return Path(destination)


def remove_leftovers(folder) -> list:
    """Delete temporary files a killed save left in ``folder`` (not in its subfolders).

    Called when a run starts, so it assumes no other process writes to the same folder.
    Returns the paths removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [path for pattern in LEFTOVER_PATTERNS for path in folder.glob(pattern)
               if path.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


#: The lock file ``lock_folder`` holds in a run folder.
LOCK_NAME = ".lock"


@contextlib.contextmanager
def lock_folder(folder):
    """Hold ``folder`` for this process for the block: a second process that asks for it fails
    at once with ``FolderInUseError``, naming the holder's PID.

    Two runs into one folder would interleave checkpoints and resume state, and each one's
    ``remove_leftovers`` would delete the other's saves in progress. The lock is an exclusive
    ``flock`` on ``folder/.lock``, which the kernel drops when the holder ends however it ends
    (a SIGKILL included): a ``.lock`` file left behind never blocks. The file holds the
    holder's PID, for the message, and is deleted on release; a folder created only to hold
    it is removed again when the block leaves it empty. Folder creation is recursive.
    """
    folder = Path(folder)
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    handle = _locked_file(folder / LOCK_NAME, folder)
    try:
        yield folder
    finally:
        _release(handle, folder / LOCK_NAME)
        if created:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty


def _locked_file(path, folder):
    """``path`` opened and locked, with this process's PID written in it."""
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip()
            handle.close()
            raise FolderInUseError(folder, pid if pid.isdigit() else None) from None
        if _same_file(handle, path):
            break
        handle.close()  # the holder deleted it as we opened it: lock the new one
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _same_file(handle, path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _release(handle, path) -> None:
    """Delete the lock file, then unlock: a process waiting on the old file sees it is gone
    (``_same_file``) and locks a new one."""
    with contextlib.suppress(OSError):
        os.remove(path)
    handle.close()  # closing drops the flock
