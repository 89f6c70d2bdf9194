"""``RunError``: the library's failures a user can act on. A command prints the one-line
message and exits 2 instead of showing a trace (``recipes/_plumbing.py``, ``keras-latent``).

Standard library only: the flag parsers import it before TensorFlow is loaded."""


class RunError(Exception):
    """A failure a user can act on: its message names the problem and the fix."""
