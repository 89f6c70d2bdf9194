"""``RunError``: the library's failures a user can act on. A command prints the one-line
message and exits 2 instead of showing a trace (``recipes/_plumbing.py``, ``keras-latent``).

Standard library only: the flag parsers import it before TensorFlow is loaded."""


class RunError(Exception):
    """A failure a user can act on: its message names the problem and the fix."""


class DiskFullError(RunError):
    """The disk (or the user's quota) filled while the run wrote ``folder``. Every save is
    atomic (``keras_latent.io``), so what is there is whole: the fix is space, then the same
    command, which resumes."""

    def __init__(self, folder):
        self.folder = folder
        super().__init__(f"disk full while writing to {folder}: free space on that disk or use "
                         "--output elsewhere; rerun the same command to resume")


class FolderInUseError(RunError):
    """Another process holds the run folder's lock (``keras_latent.io.lock_folder``): two runs
    writing one folder would interleave their checkpoints and resume state."""

    def __init__(self, folder, pid=None):
        self.folder, self.pid = folder, pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{folder} is in use by another run ({holder}); wait for it to end or "
                         "pass another --output")


#: The ``errno`` values of a full disk and of a full quota.
_DISK_FULL = ("ENOSPC", "EDQUOT")
#: ... and how libraries that do not set ``errno`` (h5py, TensorFlow) word them.
_DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded", "errno = 28",
                    "error message = 'No space")


def disk_full_cause(error: BaseException):
    """The exception of a full disk or quota in ``error`` or its causes (Keras and h5py wrap
    it), else None: an ``OSError`` with ``errno`` ENOSPC or EDQUOT, or one whose message says
    so (h5py and TensorFlow report one in words, not with ``errno``)."""
    import errno

    codes = {getattr(errno, name) for name in _DISK_FULL if hasattr(errno, name)}
    return _in_chain(error, lambda cause: getattr(cause, "errno", None) in codes or any(
        words in str(cause) for words in _DISK_FULL_WORDS))


def lost_worker_cause(error: BaseException):
    """TensorFlow's error in ``error`` or its causes when another worker of a multi-worker run
    stopped (its heartbeat aborts the collectives: ``UnavailableError``), else None. Told by
    type name, so that this module never imports TensorFlow."""
    return _in_chain(error, lambda cause: type(cause).__name__ == "UnavailableError")


def _in_chain(error, matches):
    """The first of ``error`` and its causes (``__cause__``, else ``__context__``) that
    ``matches``, else None."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if matches(error):
            return error
        error = error.__cause__ or error.__context__
    return None
