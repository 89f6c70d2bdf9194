"""keras_latent.io: every write is the old file or the new one, never half of one."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_latent import io

REPO = Path(__file__).resolve().parents[1]


def _folder_names(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with io.atomic_path(target, suffix=".tmp.json") as temporary:
            with open(temporary, "w") as handle:
                handle.write("half a fi")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert _folder_names(tmp_path) == ["metrics.json"]


def test_the_file_appears_only_when_the_block_ends(tmp_path):
    target = tmp_path / "deeper" / "report.md"  # missing folders are created
    with io.atomic_path(target) as temporary:
        assert os.path.dirname(temporary) == str(target.parent)
        assert os.path.basename(temporary).startswith(".report.md.")
        open(temporary, "w").write("new")
        assert not target.exists()
    assert target.read_text() == "new"
    assert _folder_names(target.parent) == ["report.md"]


def test_new_files_get_the_umask_mode_not_mkstemps_private_one(tmp_path):
    previous = os.umask(0o022)
    try:
        io.write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_text_json_and_npz_round_trip(tmp_path):
    text = "ünïcode\nlines\n"
    assert io.write_text_atomic(tmp_path / "a.md", text).read_text(encoding="utf-8") == text

    obj = {"b": [1, 2.5, None], "a": {"nested": "yes"}}
    path = io.write_json_atomic(tmp_path / "a.json", obj)
    assert json.loads(path.read_text()) == obj
    assert path.read_text() == json.dumps(obj, indent=2, sort_keys=True) + "\n"

    arrays = {"coords": np.arange(6, dtype="float32").reshape(3, 2), "labels": np.array([0, 1, 1])}
    path = io.save_npz_atomic(tmp_path / "a.npz", **arrays)
    with np.load(path) as loaded:
        assert sorted(loaded.files) == ["coords", "labels"]
        for key, value in arrays.items():
            np.testing.assert_array_equal(loaded[key], value)
    assert _folder_names(tmp_path) == ["a.json", "a.md", "a.npz"]


def test_copy_and_what_a_killed_writer_leaves_is_removed(tmp_path):
    source = io.write_text_atomic(tmp_path / "src.txt", "payload")
    assert io.copy_atomic(source, tmp_path / "dst.txt").read_text() == "payload"
    # what a kill between mkstemp and os.replace would leave, for each writer that can leave one
    leftovers = [tmp_path / ".state.json.k3j2l1x0.tmp.json", tmp_path / ".dst.txt.a8s7.tmp.copy",
                 tmp_path / ".best.keras.partial.keras"]
    for path in leftovers:
        path.write_text("half")
    assert sorted(io.remove_leftovers(tmp_path)) == sorted(leftovers)
    assert _folder_names(tmp_path) == ["dst.txt", "src.txt"]
    assert io.remove_leftovers(tmp_path / "missing") == []


def test_importing_it_loads_no_tensorflow():
    code = ("import sys, keras_latent.io; "
            "print(sorted(m for m in ('tensorflow', 'keras', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------ the run folder's lock


def test_a_held_folder_refuses_a_second_holder_naming_the_first(tmp_path):
    from keras_latent.errors import FolderInUseError

    with io.lock_folder(tmp_path / "run") as folder:
        assert (folder / ".lock").read_text().strip() == str(os.getpid())
        with pytest.raises(FolderInUseError, match=f"process {os.getpid()}"):
            with io.lock_folder(folder):
                pass
    assert not (tmp_path / "run").exists()  # created for the lock, left empty: removed
    with io.lock_folder(tmp_path):  # released: free again; a folder that was there stays
        pass
    assert tmp_path.is_dir() and not (tmp_path / ".lock").exists()


def test_a_lock_file_left_by_a_killed_holder_does_not_block(tmp_path):
    holder = ("import os, signal, sys\nfrom keras_latent import io\n"
              "held = io.lock_folder(sys.argv[1])\nheld.__enter__()\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    completed = subprocess.run([sys.executable, "-c", holder, str(tmp_path)], cwd=REPO,
                               timeout=120)
    assert completed.returncode == -9
    assert (tmp_path / ".lock").read_text().strip().isdigit()  # left behind, naming the dead
    with io.lock_folder(tmp_path):
        assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
