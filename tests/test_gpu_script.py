"""The GPU-machine scripts on the CPU: the data parts round trip (benchmarks/gpu_parts.py) and a
quick run of benchmarks/gpu_run.py with its files under OUT and its summary table last."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import gpu_parts  # noqa: E402

#: The recipes' backend in the runs below: JAX (as on the GPU machine) where it is installed.
BACKEND = os.environ.get("KERAS_LATENT_GPU_TEST_BACKEND") or (
    "jax" if importlib.util.find_spec("jax") else "tensorflow")


def synthetic_arrays(seed=0):
    """Small CIFAR-like arrays: smooth-ish images (so the predictor has something to do),
    extreme pixel values and labels."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(23, 1, 1, 3))
    images = (base + rng.integers(-20, 21, size=(23, 8, 8, 3))).clip(0, 255).astype(np.uint8)
    images[0] = 0
    images[1] = 255
    images[2, ::2] = 255
    return {"x_train": images[:17], "y_train": rng.integers(0, 10, 17).astype(np.uint8),
            "x_test": images[17:], "y_test": rng.integers(0, 10, 6).astype(np.uint8)}


@pytest.mark.parametrize("codec", gpu_parts.CODECS)
def test_parts_round_trip_is_byte_identical(tmp_path, codec):
    arrays = synthetic_arrays()
    source = tmp_path / "cifar10.npz"
    np.savez(source, **arrays)
    paths = gpu_parts.write_parts(gpu_parts.load_arrays(source), tmp_path / "out", count=3,
                                  codec=codec, block_size=4)
    assert [path.name for path in paths] == [f"cifar10.part{i}of3.npz" for i in (1, 2, 3)]

    # Carried one call at a time: each call's part is staged beside the earlier ones.
    staging = tmp_path / "staging"
    for number, path in enumerate(paths, start=1):
        carried = tmp_path / f"carried{number}"
        carried.mkdir()
        path.rename(carried / path.name)
        assert gpu_parts.stage_parts(carried, staging) == [staging / path.name]
        assert gpu_parts.missing_parts(staging) == (list(range(number + 1, 4)), 3)

    joined = gpu_parts.assemble(staging, tmp_path / "data",
                                expected_shapes={k: v.shape for k, v in arrays.items()})
    with np.load(joined) as data:
        assert sorted(data.files) == sorted(arrays)
        for key, array in arrays.items():
            assert data[key].dtype == array.dtype and data[key].shape == array.shape
            assert data[key].tobytes() == array.tobytes()
    assert gpu_parts.digest(gpu_parts.load_arrays(joined)) == gpu_parts.digest(arrays)


def test_max_bytes_picks_the_fewest_parts_that_fit(tmp_path):
    arrays = synthetic_arrays()
    one = gpu_parts.write_parts(arrays, tmp_path, count=1, block_size=2)[0].stat().st_size
    paths = gpu_parts.write_parts(arrays, tmp_path, max_bytes=one // 2 + 1500, block_size=2)
    assert len(paths) >= 2
    assert all(path.stat().st_size <= one // 2 + 1500 for path in paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)
    arrays_back, _ = gpu_parts.join_parts(paths)
    assert gpu_parts.digest(arrays_back) == gpu_parts.digest(arrays)


def test_missing_mixed_or_damaged_parts_are_refused(tmp_path):
    arrays = synthetic_arrays()
    first = gpu_parts.write_parts(arrays, tmp_path / "a", count=2, block_size=4)
    with pytest.raises(gpu_parts.PartsError, match="parts 2 of 2 are missing"):
        gpu_parts.join_parts(first[:1])
    other = gpu_parts.write_parts(synthetic_arrays(seed=1), tmp_path / "b", count=2, block_size=4)
    with pytest.raises(gpu_parts.PartsError, match="different preparations"):
        gpu_parts.join_parts([first[0], other[1]])
    with pytest.raises(gpu_parts.PartsError, match="shape"):
        gpu_parts.join_parts(first, expected_shapes={"x_train": (50000, 32, 32, 3)})
    # Staging a new preparation's part drops the staged parts of the old one.
    staging = tmp_path / "staging"
    gpu_parts.stage_parts(tmp_path / "a", staging)
    (tmp_path / "b" / other[0].name).unlink()
    gpu_parts.stage_parts(tmp_path / "b", staging)
    assert gpu_parts.missing_parts(staging) == ([1], 2)
    damaged = tmp_path / "damaged.part1of1.npz"
    damaged.write_bytes(b"not a zip")
    with pytest.raises(gpu_parts.PartsError, match="not a readable part"):
        gpu_parts.part_info(damaged)


def test_quick_run_writes_figures_and_ends_with_the_summary(tmp_path, data_dir):
    if not (data_dir / "cifar10.npz").is_file():
        pytest.skip("no cifar10.npz in the data folder")
    backend = BACKEND
    out = tmp_path / "out"
    env = {**os.environ, "OUT": str(out), "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_run.py"), "--recipes", "classifier",
         "--backend", backend, "--data-dir", str(data_dir), "--no-install",
         "--staging-dir", str(tmp_path / "staging"), "--work-dir", str(tmp_path / "work"),
         "--timeout", "240", "--quick", "--limit", "300", "--epochs", "1"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert completed.returncode == 0, completed.stdout[-4000:] + completed.stderr[-2000:]

    files = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    assert files == ["cifar_classifier/metrics.json", "cifar_classifier/run.log",
                     "reports.md", "summary.json"]
    metrics = json.loads((out / "cifar_classifier" / "metrics.json").read_text())
    accuracy = metrics["accuracy"]["test"]
    summary = json.loads((out / "summary.json").read_text())
    (row,) = summary["recipes"]
    assert row["recipe"] == "cifar_classifier" and row["status"] == 0
    assert row["accuracy"] == accuracy and row["wall_s"] > 0
    assert row["device"].startswith(f"{backend} on ")
    assert "# Evaluation" in (out / "reports.md").read_text()

    # The table is the last thing printed.
    lines = completed.stdout.rstrip().splitlines()
    assert lines[-3].startswith("| recipe | exit | wall s | test acc")
    cells = [cell.strip() for cell in lines[-1].strip("|").split("|")]
    assert cells[0] == "cifar_classifier" and cells[1] == "0"
    assert float(cells[3]) == pytest.approx(accuracy, abs=1e-4)
    assert cells[5] == "-"  # a classifier has no reconstruction MAE
    assert cells[6].startswith(f"{backend} on ")


def test_missing_parts_stop_the_run_with_a_message(tmp_path):
    staging = tmp_path / "staging"
    gpu_parts.write_parts(synthetic_arrays(), staging, count=2, block_size=4)[1].unlink()
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_run.py"), "--staging-dir", str(staging),
         "--parts-dir", str(tmp_path / "carried"), "--no-install", "--recipes", "classifier"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "OUT": str(tmp_path / "out")},
    )
    assert completed.returncode == 3, completed.stdout + completed.stderr
    assert "parts staged: 1 of 2; missing 2" in completed.stdout
    assert not (tmp_path / "out").exists()


def test_a_recipe_past_its_limit_is_stopped_and_reported(tmp_path, data_dir):
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu_run.py"), "--recipes", "classifier",
         "--backend", BACKEND, "--data-dir", str(data_dir), "--no-install",
         "--work-dir", str(tmp_path / "work"), "--timeout", "classifier=2", "--quick"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "OUT": str(out), "CUDA_VISIBLE_DEVICES": ""},
    )
    assert completed.returncode == 1, completed.stdout[-3000:] + completed.stderr[-2000:]
    (row,) = json.loads((out / "summary.json").read_text())["recipes"]
    assert row["status"] == 124 and row["wall_s"] < 30
    assert "stopped at its limit of 2 s" in (out / "cifar_classifier" / "run.log").read_text()
    assert completed.stdout.rstrip().splitlines()[-1].startswith("| cifar_classifier | 124 (timeout) |")
