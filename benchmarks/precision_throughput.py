"""float32 against bfloat16 (or float16) training throughput of each CIFAR-10 recipe's model.

For every model the two precisions are built side by side (a Keras policy is fixed when a layer
is built), compiled the way the paradigms compile them, warmed up, and then timed in
interleaved rounds (fp32, mixed, fp32, mixed, ...) on the same in-memory batches, so a burst of
load from elsewhere hits both alike. The figure is the median over rounds of steady-state
images per second; the ratio is mixed / float32.

Models (``--models``):
    benchmark          the fixed benchmark autoencoder (benchmarks/README.md)
    cifar_autoencoder  recipes/cifar_autoencoder.py's autoencoder
    cifar_classifier   recipes/cifar_classifier.py's cifar_fast classifier (batch 1024 there)
    cifar_simclr       recipes/cifar_simclr.py's SimCLR encoder + projection head

Usage:
    python benchmarks/precision_throughput.py                      # all models, bf16 vs fp32
    python benchmarks/precision_throughput.py --quick --models benchmark

One JSON line per measurement, then a table. SimCLR counts images, not views.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # this checkout's keras_latent

from keras_latent.evaluation.metadata import cpu_model  # noqa: E402
from keras_latent.paradigms.fitting import training_scope  # noqa: E402
from keras_latent.paradigms.precision import auto_policy  # noqa: E402
from recipe_models import (  # noqa: E402
    current_precision,
    model_and_data,
    recipe_config,
    recipe_settings,
    splits_of,
)

MODELS = ("benchmark", "cifar_autoencoder", "cifar_classifier", "cifar_simclr")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--precision", default="bfloat16", choices=["auto", "bfloat16", "float16"],
                        help="the mixed precision compared with float32")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=4, help="rounds per precision")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps (tracing)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round of 1 step")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 1, 1, 1
    for name in ("batch_size", "steps", "repeats", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    args.policy = auto_policy(args.precision)
    if args.policy == "float32":
        parser.error(f"--precision {args.precision} resolves to float32 on this machine: "
                     "nothing to compare; pass --precision bfloat16 or float16")
    return args


def build(name, batch_size):
    """(model, batch -> fit arguments) for one recipe's model under the current policy, built
    and compiled by the paradigm's functions (``recipe_models``)."""
    paradigm = "autoencoder" if name == "benchmark" else name.removeprefix("cifar_")
    settings = recipe_settings(paradigm)
    if name == "benchmark":
        settings["architecture"] = "benchmark"
    images, labels = next(_batches(1, batch_size))
    splits = splits_of((images * 255).astype("uint8"), labels)
    config = recipe_config(paradigm, settings, batch_size=batch_size, epochs=1, verbose=0,
                           precision=current_precision())
    with training_scope(config):
        model, _ = model_and_data(paradigm, splits, config, settings)
    arguments = {"autoencoder": lambda x, y: (x, x), "classifier": lambda x, y: (x, y),
                 "simclr": lambda x, y: (x, x[:, :, ::-1])}[paradigm]  # the two views
    return model, arguments


def timed(model, arguments, steps, batch_size):
    data = [arguments(x, y) for x, y in _batches(steps, batch_size)]
    start = time.perf_counter()
    for batch in data:
        model.train_on_batch(*batch)
    return steps * batch_size / (time.perf_counter() - start)


def _batches(steps, batch_size):
    rng = np.random.default_rng(0)
    for _ in range(steps):
        yield (rng.random((batch_size, 32, 32, 3), dtype=np.float32),
               rng.integers(0, 10, batch_size))


def compare(name, args):
    built = {}
    for policy in ("float32", args.policy):
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(0)
        built[policy] = build(name, args.batch_size)
    keras.mixed_precision.set_global_policy("float32")
    for model, arguments in built.values():
        timed(model, arguments, args.warmup, args.batch_size)
    rounds = {policy: [] for policy in built}
    for _ in range(args.repeats):
        for policy, (model, arguments) in built.items():
            rounds[policy].append(timed(model, arguments, args.steps, args.batch_size))
    result = {policy: statistics.median(values) for policy, values in rounds.items()}
    print(json.dumps({"kind": "measurement", "model": name, "batch_size": args.batch_size,
                      "steps": args.steps, "repeats": args.repeats,
                      "images_per_s": {p: round(v, 1) for p, v in result.items()},
                      "rounds_images_per_s": {p: [round(v, 1) for v in r] for p, r in rounds.items()},
                      "load_1m": round(os.getloadavg()[0], 2)}), flush=True)
    return result


def main(argv=None):
    args = parse_args(argv)
    print(json.dumps({"kind": "environment", "cpu": cpu_model(), "cores": os.cpu_count(),
                      "keras": keras.__version__, "mixed_policy": args.policy,
                      "load_1m": round(os.getloadavg()[0], 2)}), flush=True)
    results = {name: compare(name, args) for name in args.models}
    print(f"\n{'model':<20}{'float32 img/s':>15}{args.policy + ' img/s':>22}{'ratio':>8}")
    for name, result in results.items():
        fp32, mixed = result["float32"], result[args.policy]
        print(f"{name:<20}{fp32:>15.1f}{mixed:>22.1f}{mixed / fp32:>7.2f}x")
    return results


if __name__ == "__main__":
    main()
