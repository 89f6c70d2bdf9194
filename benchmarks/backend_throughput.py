"""Training throughput of each paradigm on each Keras backend, as a user runs it.

For every paradigm (autoencoder, classifier, SimCLR) and every backend asked for, a child
process builds the paradigm's model and input pipeline with the paradigm's own functions
(``build_*``, ``compile_*``, ``*_datasets``: the CIFAR-10 recipes' architectures, batch sizes
and augmentations), compiles it with one untimed round, then waits. The parent then times the
children's rounds in turn (TensorFlow, JAX, TensorFlow, JAX...), so a burst of load from other
processes hits every backend alike; the figure is the median over rounds of images per second
(``fit`` of ``--steps`` steps, input pipeline included). A backend whose package is missing is
skipped. ``BACKEND:arrays`` feeds a backend from the on-device array pipeline instead of tf.data
(``KERAS_LATENT_INPUT``); ``BACKEND@PATH`` runs the keras-latent of another checkout (e.g. a
``git worktree`` of an older commit, from the one-compile API on: ``recipe_models.py``), to
compare versions in the same interleaved rounds.

Usage:
    python benchmarks/backend_throughput.py                       # tensorflow vs jax, all paradigms
    python benchmarks/backend_throughput.py --quick --paradigms simclr
    python benchmarks/backend_throughput.py --backends tensorflow jax jax:arrays
    python benchmarks/backend_throughput.py --backends tensorflow tensorflow@/tmp/old-checkout

One JSON line per round goes to stdout, then a table. Images per second count images, not
views: a SimCLR step of batch 256 processes 512 augmented views.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from recipe_models import PARADIGMS, model_and_data, recipe_config, recipe_settings

HERE = Path(__file__).resolve().parent
_SHARED_DATA = HERE.parent.parent / "shared" / "datasets"

def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"],
                        help="backends to compare: BACKEND[:arrays][@CHECKOUT]")
    parser.add_argument("--paradigms", nargs="+", choices=PARADIGMS, default=list(PARADIGMS))
    parser.add_argument("--images", type=int, default=4096,
                        help="images per timed round (steps = images // batch size, >= 3)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per backend")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--data-dir", default=os.environ.get("KERAS_LATENT_DATA_DIR")
                        or (str(_SHARED_DATA) if _SHARED_DATA.is_dir() else None))
    parser.add_argument("--quick", action="store_true", help="3 steps, 2 rounds, small batches")
    parser.add_argument("--child", nargs=2, metavar=("BACKEND", "PARADIGM"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 96, min(args.rounds, 2)
    return args


def steps_per_round(args, paradigm) -> int:
    return max(3, args.images // batch_size_of(args, paradigm))


def batch_size_of(args, paradigm) -> int:
    return 32 if args.quick else recipe_settings(paradigm)["batch_size"]


# -- the child: one backend, one paradigm -------------------------------------------------------


def child(args, backend_name, paradigm):
    """Build, compile (one untimed round), then time one round per "go" line on stdin."""
    try:
        from keras_latent.flags import quiet_startup
    except ImportError:  # a checkout from before the backends work
        def quiet_startup():
            return None
    quiet_startup()
    import keras

    import keras_latent as kl
    from keras_latent.evaluation.metadata import device_description
    from keras_latent.paradigms import fitting

    settings = recipe_settings(paradigm)
    batch_size, steps = batch_size_of(args, paradigm), steps_per_round(args, paradigm)
    count = batch_size * (steps + 1) * (2 if paradigm == "simclr" else 1)
    splits = kl.data.load_dataset("cifar10", data_dir=args.data_dir, seed=0).limit(count, seed=0)
    config = recipe_config(paradigm, settings, batch_size=batch_size, epochs=1, verbose=0,
                           precision=args.precision)
    with fitting.training_scope(config):
        model, data = model_and_data(paradigm, splits, config, settings)
        data = _repeated(data)
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)  # compiles
    device = f"{keras.backend.backend()} on {device_description()}"
    print(json.dumps({"ready": True, "device": device, "policy": config.dtype_policy,
                      "keras": keras.__version__}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        seconds = time.perf_counter() - start
        print(json.dumps({"images_per_s": steps * batch_size / seconds}), flush=True)


def _repeated(data):
    """tf.data pipelines repeat, so a round of --steps never runs out of a small slice."""
    return data.repeat() if hasattr(data, "repeat") else data


# -- the parent: interleaved rounds -----------------------------------------------------------


def start_child(args, spec, paradigm):
    spec, _, checkout = spec.partition("@")
    backend_name, _, feed = spec.partition(":")
    tree = Path(checkout).resolve() if checkout else HERE.parent
    env = {**os.environ, "KERAS_BACKEND": backend_name, "PYTHONPATH": str(tree)}
    if feed:
        env["KERAS_LATENT_INPUT"] = feed
    argv = [sys.executable, __file__, "--child", backend_name, paradigm,
            "--images", str(args.images), "--precision", args.precision]
    if args.data_dir:
        argv += ["--data-dir", args.data_dir]
    if args.quick:
        argv.append("--quick")
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                               env=env, cwd=HERE.parent)
    header = _read(process)
    return process, header


def _read(process):
    for line in process.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"benchmark child exited with {process.wait()} before answering")


def benchmark(args, paradigm):
    specs = [spec for spec in args.backends if _installed(spec.partition("@")[0].partition(":")[0])]
    children = {spec: start_child(args, spec, paradigm) for spec in specs}
    figures = {spec: [] for spec in specs}
    for round_ in range(args.rounds):
        for spec, (process, header) in children.items():
            process.stdin.write("go\n")
            process.stdin.flush()
            value = _read(process)["images_per_s"]
            figures[spec].append(value)
            print(json.dumps({"paradigm": paradigm, "backend": spec, "round": round_,
                              "images_per_s": round(value, 1), "load_1m": os.getloadavg()[0],
                              "device": header["device"], "policy": header["policy"]}),
                  flush=True)
    for process, _ in children.values():
        process.stdin.write("quit\n")
        process.stdin.close()
        process.wait()
    return {spec: statistics.median(values) for spec, values in figures.items()}


def _installed(package):
    return importlib.util.find_spec(package) is not None


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args, *args.child)
    load = os.getloadavg()[0]
    results = {paradigm: benchmark(args, paradigm) for paradigm in args.paradigms}
    specs = sorted({spec for row in results.values() for spec in row}, key=args.backends.index)
    print(f"\nimages/s, median of {args.rounds} rounds of about {args.images} images "
          f"(load average at the start {load:.2f}, {os.cpu_count()} cores)")
    print("| paradigm | " + " | ".join(specs) + " |")
    print("| --- |" + " ---: |" * len(specs))
    for paradigm, row in results.items():
        print(f"| {paradigm} | " + " | ".join(f"{row[spec]:.0f}" for spec in specs) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
