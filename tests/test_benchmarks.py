"""Smoke test of benchmarks/train_throughput.py: it runs, and its JSON lines say what it measured.

No timing is asserted (the machine is shared); only that every line parses and every
measurement is a positive rate for a model whose weights match its plain twin's.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_throughput.py"


def test_quick_run_prints_positive_throughputs(tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--paradigms", "classifier", "--no-torch",
         "--random-data", "--batch-size", "32"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    records = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    kinds = [record["kind"] for record in records]
    assert kinds[0] == "environment" and kinds[-1] == "done"

    measurements = [record for record in records if record["kind"] == "measurement"]
    variants = {record["variant"] for record in measurements}
    assert {"keras_latent", "plain_fit", "plain_tape"} <= variants
    for record in measurements:
        assert record["paradigm"] == "classifier"
        assert record["batch_size"] == 32
        assert record["images_per_s"] > 0
        assert record["architecture"]["match"], record["architecture"]
    # The final table names every measured variant.
    for variant in variants:
        assert variant in completed.stdout.split('{"kind": "done"')[-1]


def test_precision_benchmark_compares_float32_with_bfloat16(tmp_path):
    script = SCRIPT.parent / "precision_throughput.py"
    completed = subprocess.run(
        [sys.executable, str(script), "--quick", "--models", "benchmark", "--batch-size", "16"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    records = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
    assert records[0]["kind"] == "environment" and records[0]["mixed_policy"] == "mixed_bfloat16"
    (measurement,) = [record for record in records if record["kind"] == "measurement"]
    assert measurement["model"] == "benchmark"
    assert set(measurement["images_per_s"]) == {"float32", "mixed_bfloat16"}
    assert all(value > 0 for value in measurement["images_per_s"].values())
