"""Shared save/reload check: a saved model must load in a FRESH process with no custom_objects.

A same-process reload can pass by accident (classes already imported, objects cached), so the
reload runs in ``python -c`` where only ``import keras_latent`` can register the custom classes.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

_RELOAD_SCRIPT = """
import os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy
import keras
import keras_latent
import numpy as np

folder = sys.argv[1]
atol = float(sys.argv[2])
model = keras.saving.load_model(os.path.join(folder, "model.keras"))
x = numpy.load(os.path.join(folder, "x.npy"))
expected = numpy.load(os.path.join(folder, "expected.npy"))
got = numpy.asarray(model.predict(x, verbose=0))
if got.shape != expected.shape:
    sys.exit(f"RELOAD MISMATCH: shape {{got.shape}} != {{expected.shape}}")
diff = float(numpy.max(numpy.abs(got.astype("float64") - expected.astype("float64"))))
if not diff <= atol:
    sys.exit(f"RELOAD MISMATCH: max abs diff {{diff}} > atol {{atol}}")
{extra_code}
print(f"RELOAD OK max_abs_diff={{diff}}")
"""


def assert_reloads_in_fresh_process(model, x, tmp_path, atol=1e-6, extra_code=""):
    """Save ``model``, reload it in a new interpreter and assert it predicts the same on ``x``.

    ``extra_code`` runs in the child after the check with ``model``, ``x``, ``np``, ``keras`` in
    scope (e.g. ``model.fit(x, x, epochs=1, verbose=0)`` to prove the reloaded model trains).
    Returns the child's stdout.
    """
    folder = Path(tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    x = np.asarray(x)
    model.save(folder / "model.keras")
    np.save(folder / "x.npy", x)
    np.save(folder / "expected.npy", np.asarray(model.predict(x, verbose=0)))

    script = _RELOAD_SCRIPT.format(extra_code=textwrap.dedent(extra_code))
    env = dict(os.environ)
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder), repr(float(atol))],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"fresh-process reload failed (rc={result.returncode}):\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    assert "RELOAD OK" in result.stdout, result.stdout
    return result.stdout
