"""Training throughput of keras-latent against plain Keras/TensorFlow and PyTorch twins.

Every paradigm (autoencoder, classifier, SimCLR) is built twice on the fixed benchmark
architecture (see benchmarks/README.md): once through the keras-latent API, compiled the way
``keras_latent/paradigms`` compiles it, and once as a minimal plain script, both as (a) a
Functional model trained with ``compile``/``fit`` and (b) a bare ``tf.GradientTape`` step in a
``tf.function``. All variants of one paradigm are warmed up (traced) first and then timed in
interleaved rounds, so a burst of load from other processes hits them alike; the figure is the
median over rounds of steady-state images per second. A PyTorch loop of the same models runs in
a subprocess (``benchmarks/torch_twin.py``) when torch is importable.

Variants (``variant`` in the JSON lines):
    keras_latent           library model, in-memory float32 batches (no input pipeline work)
    keras_latent_pipeline  library model fed by the library's tf.data pipeline from uint8 images,
                           with the paradigm's default augmentation (AE: none, classifier:
                           "light", SimCLR: "simclr")
    plain_fit              plain Functional model, compile/fit, same in-memory batches
    plain_tape             plain model, bare GradientTape step in a tf.function
    pipeline_only          (SimCLR) the contrastive tf.data pipeline alone, no training
    plain_tape_augment_in_step  (SimCLR) the library's augmentation called inside the training
                           step on in-memory batches, instead of in tf.data
    torch                  PyTorch twin (subprocess)

Usage:
    python benchmarks/train_throughput.py                      # CIFAR-10 slice, all paradigms
    python benchmarks/train_throughput.py --quick --paradigms classifier --no-torch
    python benchmarks/train_throughput.py --jit-compile on --mixed-precision   # on a GPU

One JSON line per measurement goes to stdout, then a table. Images per second count images, not
views: a SimCLR step of batch 256 processes 512 augmented views.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's keras_latent

from keras_latent.evaluation.metadata import cpu_model  # noqa: E402
from keras_latent.paradigms.precision import auto_policy, precision_line  # noqa: E402

PARADIGMS = ("autoencoder", "classifier", "simclr")
IMAGE_SHAPE = (32, 32, 3)
LATENT_DIM = 128
NUM_CLASSES = 10
TEMPERATURE = 0.5
LEARNING_RATE = 1e-3
IN_MEMORY_BATCHES = 8  # distinct in-memory batches cycled through (keeps the cache small)
PIPELINE_BATCHES = 32  # uint8 images the tf.data pipelines draw from, in batches
PIPELINE_VARIANTS = ("keras_latent_pipeline", "pipeline_only", "plain_tape_augment_in_step")
PIPELINE_PAUSE_S = 2.0
HERE = Path(__file__).resolve().parent
# A checkout normally sits beside ../shared/datasets (as tests/conftest.py assumes).
_SHARED_DATA = HERE.parent.parent / "shared" / "datasets"
DEFAULT_DATA_DIR = os.environ.get("KERAS_LATENT_DATA_DIR") or (
    str(_SHARED_DATA) if _SHARED_DATA.is_dir() else None)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--paradigms", nargs="+", choices=PARADIGMS, default=list(PARADIGMS))
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (median is kept)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps that trace/compile")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--jit-compile", choices=("on", "off", "auto"), default="auto")
    parser.add_argument("--precision", default="float32",
                        choices=["auto", "float32", "bfloat16", "float16"],
                        help="dtype policy of every Keras variant (and autocast dtype in torch); "
                             "'auto' as TrainingConfig resolves it on this machine")
    parser.add_argument("--mixed-precision", action="store_true",
                        help="the same as --precision float16 (kept for older commands)")
    parser.add_argument("--steps-per-execution", type=int, default=1,
                        help="for every compile/fit variant (Keras' default is 1)")
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                        help="folder with cifar10.npz (default: $KERAS_LATENT_DATA_DIR)")
    parser.add_argument("--random-data", action="store_true", help="random uint8 images")
    parser.add_argument("--no-pipeline", action="store_true",
                        help="skip the tf.data + augmentation variants")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch twin")
    parser.add_argument("--torch-channels-last", action="store_true")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 2 timed steps, 1 round, 1 warm-up step")
    args = parser.parse_args(argv)
    if args.quick:
        args.steps, args.repeats, args.warmup = 2, 1, 1
    if args.mixed_precision:
        args.precision = "float16"
    args.policy = auto_policy(args.precision)
    args.mixed_precision = args.policy != "float32"
    for name in ("steps", "repeats", "warmup", "batch_size", "steps_per_execution"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.repeats < 3 and not args.quick:
        print("note: fewer than 3 repeats; the median is not robust", file=sys.stderr)
    return args


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------


def load_images(args, count):
    """``count`` uint8 CIFAR-10 training images and labels (or random ones with --random-data)."""
    if not args.random_data:
        if not args.data_dir:
            sys.exit("error: no data folder; pass --data-dir (a folder with cifar10.npz), set "
                     "KERAS_LATENT_DATA_DIR, or use --random-data")
        path = Path(args.data_dir) / "cifar10.npz"
        if not path.is_file():
            sys.exit(f"error: {path} not found; pass --data-dir pointing at a folder with "
                     "cifar10.npz, or use --random-data")
        with np.load(path) as data:
            images, labels = data["x_train"], data["y_train"].reshape(-1).astype("int64")
        reps = -(-count // len(images))
        return np.tile(images, (reps, 1, 1, 1))[:count], np.tile(labels, reps)[:count]
    rng = np.random.default_rng(0)
    return (rng.integers(0, 256, (count, *IMAGE_SHAPE), dtype=np.uint8),
            rng.integers(0, NUM_CLASSES, count).astype("int64"))


def in_memory_dataset(paradigm, images, labels, batch_size):
    """Whole float32 batches already in memory, cycled: the input costs (almost) nothing."""
    x = (images.astype("float32") / 255.0).reshape(-1, batch_size, *IMAGE_SHAPE)
    if paradigm == "autoencoder":
        pairs = (x, x)
    elif paradigm == "classifier":
        pairs = (x, labels.reshape(-1, batch_size))
    else:  # two fixed, different "views" so the contrastive task is not trivial
        pairs = (x, x[:, :, :, ::-1, :].copy())
    return tf.data.Dataset.from_tensor_slices(pairs).repeat().prefetch(tf.data.AUTOTUNE)


# ---------------------------------------------------------------------------------------------
# Plain Keras / TensorFlow twins (no keras_latent import)
# ---------------------------------------------------------------------------------------------


def plain_encoder():
    inputs = keras.Input(IMAGE_SHAPE)
    x = inputs
    for channels in (32, 64, 128):
        x = layers.Conv2D(channels, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(LATENT_DIM)(x), name="plain_encoder")


def plain_decoder():
    inputs = keras.Input((LATENT_DIM,))
    x = layers.Dense(4 * 4 * 128, activation="relu")(inputs)  # as the benchmark preset
    x = layers.Reshape((4, 4, 128))(x)
    for channels in (64, 32):
        x = layers.Conv2DTranspose(channels, 3, strides=2, padding="same")(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    x = layers.Conv2DTranspose(3, 3, strides=2, padding="same")(x)
    outputs = layers.Activation("sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="plain_decoder")


def plain_projection_head():
    inputs = keras.Input((LATENT_DIM,))
    x = layers.Dense(128, use_bias=False)(inputs)  # as SimCLR's head: Dense -> BN -> ReLU -> Dense
    x = layers.ReLU()(layers.BatchNormalization()(x))
    return keras.Model(inputs, layers.Dense(128, dtype="float32")(x), name="plain_head")


def plain_nt_xent(z):
    """NT-Xent on stacked projections ``[z_1; z_2]`` (2N, D), written with plain TF ops."""
    z = tf.math.l2_normalize(tf.cast(z, "float32"), axis=-1)
    n2 = tf.shape(z)[0]
    logits = tf.matmul(z, z, transpose_b=True) / TEMPERATURE - 1e9 * tf.eye(n2)
    rows = tf.range(n2)
    targets = tf.where(rows < n2 // 2, rows + n2 // 2, rows - n2 // 2)
    return tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits))


class StackViews(layers.Layer):
    """Both views through the encoder as one 2N batch, as SimCLR implementations usually do."""

    def call(self, views):
        return keras.ops.concatenate(views, axis=0)


def plain_model(paradigm):
    """(model, loss, metrics) of the minimal Functional twin."""
    encoder = plain_encoder()
    if paradigm == "autoencoder":
        inputs = keras.Input(IMAGE_SHAPE)
        model = keras.Model(inputs, plain_decoder()(encoder(inputs)))
        return model, "mean_absolute_error", [keras.metrics.MeanAbsoluteError(name="mae")]
    if paradigm == "classifier":
        inputs = keras.Input(IMAGE_SHAPE)
        logits = layers.Dense(NUM_CLASSES, dtype="float32")(encoder(inputs))
        model = keras.Model(inputs, logits)
        return (model, keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    view_1, view_2 = keras.Input(IMAGE_SHAPE), keras.Input(IMAGE_SHAPE)
    z = plain_projection_head()(encoder(StackViews()([view_1, view_2])))
    model = keras.Model([view_1, view_2], z)
    return model, (lambda y_true, y_pred: plain_nt_xent(y_pred)), []


def plain_fit_dataset(paradigm, dataset):
    if paradigm != "simclr":
        return dataset
    # Keras' (x, y) convention: the views are the inputs, the target is unused.
    return dataset.map(lambda v1, v2: ((v1, v2), tf.zeros([2 * tf.shape(v1)[0]])))


def tape_step(paradigm, model, jit_compile, augment=None):
    """A bare training step; ``augment`` (SimCLR only) runs inside it on the in-memory batch."""
    optimizer = keras.optimizers.Adam(LEARNING_RATE)
    if keras.config.dtype_policy().name == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    scce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_fn(x, y):
        if paradigm == "autoencoder":
            return tf.reduce_mean(tf.abs(tf.cast(model(x, training=True), "float32") - y))
        if paradigm == "classifier":
            return scce(y, model(x, training=True))
        if augment is not None:
            x, y = augment(x), augment(x)
        return plain_nt_xent(model([x, y], training=True))

    @tf.function(jit_compile={"on": True, "off": False, "auto": None}[jit_compile])
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(x, y)
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return step


# ---------------------------------------------------------------------------------------------
# keras-latent models, compiled as keras_latent/paradigms compiles them
# ---------------------------------------------------------------------------------------------


def library_model(paradigm, images, labels, args):
    """(model, pipeline): the paradigm's own ``build_*``, ``compile_*`` and ``*_datasets`` on the
    benchmark architecture (``recipe_models``), with the paradigm's default augmentation and
    Adam at a constant rate, as the plain twins train."""
    from recipe_models import current_precision, model_and_data, recipe_config, splits_of

    from keras_latent.paradigms.fitting import training_scope

    settings = {"architecture": "benchmark", "latent_dim": LATENT_DIM, "temperature": TEMPERATURE,
                "projection_hidden": 128, "projection_dim": 128}
    config = recipe_config(
        "autoencoder", settings, batch_size=args.batch_size, learning_rate=LEARNING_RATE,
        weight_decay=0.0, schedule="constant", seed=0, verbose=0, precision=current_precision(),
        jit_compile={"on": True, "off": False, "auto": "auto"}[args.jit_compile])
    with training_scope(config):
        model, pipeline = model_and_data(paradigm, splits_of(images, labels), config, settings)
    # The paradigms keep Keras' default (1); set here only when --steps-per-execution asks.
    model.steps_per_execution = args.steps_per_execution
    return model, pipeline.repeat()


def architecture_check(paradigm, library, plain):
    """Weight counts (after the first step built them) of the library and plain models."""
    counts = [int(sum(np.prod(w.shape) for w in m.weights)) for m in (library, plain)]
    return {"library_params": counts[0], "plain_params": counts[1], "match": counts[0] == counts[1]}


# ---------------------------------------------------------------------------------------------
# Timing
# ---------------------------------------------------------------------------------------------


class StepTimer(keras.callbacks.Callback):
    """Times from the end of the first executed batch to the end of the last one.

    The first batch of each ``fit`` carries the iterator start; excluding it leaves the steady
    state. Works with ``steps_per_execution > 1`` (callbacks then fire once per execution).
    """

    def on_train_begin(self, logs=None):
        self.marks = []

    def on_train_batch_end(self, batch, logs=None):
        self.marks.append((batch, time.perf_counter()))

    def images_per_second(self, batch_size):
        (first, t0), (last, t1) = self.marks[0], self.marks[-1]
        return (last - first) * batch_size / (t1 - t0)


class FitRunner:
    def __init__(self, model, dataset, batch_size, steps_per_execution):
        self.model, self.dataset, self.batch_size = model, dataset, batch_size
        self.spe = steps_per_execution

    def _fit(self, steps):
        timer = StepTimer()
        self.model.fit(self.dataset, epochs=1, steps_per_epoch=steps, verbose=0,
                       callbacks=[timer], shuffle=False)
        return timer

    def warm_up(self, steps):
        self._fit(max(steps, 2) * self.spe)

    def measure(self, steps):
        # One extra execution: its end is the start mark.
        return self._fit((steps + 1) * self.spe).images_per_second(self.batch_size)


class LoopRunner:
    """A Python loop over a dataset iterator calling ``step``; ``step=None`` only reads data.

    ``fresh_iterator``: a new iterator per round, dropped after it. Otherwise a drained
    pipeline would refill its prefetch buffer in the background while the next variant is
    timed, and be timed itself on a buffer filled for free.
    """

    def __init__(self, step, dataset, batch_size, fresh_iterator=False):
        self.step, self.dataset, self.batch_size = step, dataset, batch_size
        self.fresh_iterator = fresh_iterator
        self.iterator = None if fresh_iterator else iter(dataset)

    def _run(self, steps):
        result = None
        for _ in range(steps):
            batch = next(self.iterator)
            result = self.step(*batch) if self.step is not None else batch
        tf.nest.map_structure(lambda t: t.numpy(), result)  # wait for the last step to finish

    def warm_up(self, steps):
        self.measure(steps)

    def measure(self, steps):
        if self.fresh_iterator:
            self.iterator = iter(self.dataset)
        self._run(1)
        start = time.perf_counter()
        self._run(steps)
        rate = steps * self.batch_size / (time.perf_counter() - start)
        if self.fresh_iterator:
            self.iterator = None
        return rate


def load_1m():
    return round(os.getloadavg()[0], 2)


def emit(record):
    print(json.dumps(record), flush=True)


def benchmark_paradigm(paradigm, args, images, labels):
    """Build, warm up, then time every variant of ``paradigm`` in interleaved rounds."""
    keras.utils.set_random_seed(0)
    runners = make_runners(paradigm, args, images, labels)
    for runner in runners.values():
        runner.warm_up(args.warmup)
        gc.collect()
    time.sleep(PIPELINE_PAUSE_S)
    rounds, loads = timed_rounds(runners, args)
    library, plain = runners["keras_latent"].model, runners["plain_fit"].model
    jit_resolved = {"keras_latent": getattr(library, "jit_compile", None),
                    "plain_fit": getattr(plain, "jit_compile", None)}
    architecture = architecture_check(paradigm, library, plain)
    results = {}
    for name, values in rounds.items():
        results[name] = statistics.median(values)
        emit({"kind": "measurement", "paradigm": paradigm, "variant": name,
              "images_per_s": round(results[name], 1),
              "rounds_images_per_s": [round(v, 1) for v in values],
              "steps": args.steps, "repeats": args.repeats, "batch_size": args.batch_size,
              "jit_compile": args.jit_compile, "jit_compile_resolved": jit_resolved,
              "mixed_precision": args.mixed_precision, "dtype_policy": args.policy,
              "steps_per_execution": args.steps_per_execution,
              "device": device_name(), "load_1m": loads, "architecture": architecture})
    return results


def make_runners(paradigm, args, images, labels) -> dict:
    """Every variant of ``paradigm``, by name (see the module docstring), built and compiled."""
    batch, every = args.batch_size, args.steps_per_execution
    count = IN_MEMORY_BATCHES * batch
    memory = in_memory_dataset(paradigm, images[:count], labels[:count], batch)
    library, _ = library_model(paradigm, images, labels, args)
    runners = {"keras_latent": FitRunner(library, memory, batch, every)}
    if not args.no_pipeline:
        twin, pipeline = library_model(paradigm, images, labels, args)
        runners["keras_latent_pipeline"] = FitRunner(twin, pipeline, batch, every)
        if paradigm == "simclr":
            runners["pipeline_only"] = LoopRunner(None, pipeline, batch, fresh_iterator=True)
    model, loss, metrics = plain_model(paradigm)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), loss=loss, metrics=metrics,
                  jit_compile={"on": True, "off": False, "auto": "auto"}[args.jit_compile],
                  steps_per_execution=every)
    runners["plain_fit"] = FitRunner(model, plain_fit_dataset(paradigm, memory), batch, every)
    tape_model, _, _ = plain_model(paradigm)
    runners["plain_tape"] = LoopRunner(tape_step(paradigm, tape_model, args.jit_compile),
                                       memory, batch)
    if paradigm == "simclr" and not args.no_pipeline:
        from keras_latent.data import build_augmentation

        augment_model, _, _ = plain_model(paradigm)
        augment = build_augmentation("cifar10", "simclr", seed=0)
        step = tape_step(paradigm, augment_model, args.jit_compile, augment=augment)
        runners["plain_tape_augment_in_step"] = LoopRunner(step, memory, batch)
    return runners


def timed_rounds(runners, args):
    """({variant: images/s per round}, load average after each round)."""
    rounds, loads = {name: [] for name in runners}, []
    # In-memory variants first, pipelines last, then a pause: a pipeline left with a drained
    # prefetch buffer refills it in the background, which must not land on another variant.
    order = sorted(runners, key=lambda name: name in PIPELINE_VARIANTS)
    for _ in range(args.repeats):
        for name in order:
            rounds[name].append(runners[name].measure(args.steps))
            gc.collect()  # drop finished fit iterators now, so their threads stop
            if name in PIPELINE_VARIANTS:
                time.sleep(PIPELINE_PAUSE_S)
        loads.append(load_1m())
    return rounds, loads


# ---------------------------------------------------------------------------------------------
# PyTorch twin, environment, report
# ---------------------------------------------------------------------------------------------


def run_torch_twin(args):
    if args.no_torch or importlib.util.find_spec("torch") is None:
        return {}
    command = [sys.executable, str(HERE / "torch_twin.py"), "--paradigms", *args.paradigms,
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
    if args.mixed_precision:
        command += ["--mixed-precision", "--autocast-dtype", args.policy.removeprefix("mixed_")]
    if args.torch_channels_last:
        command.append("--channels-last")
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        print(f"torch twin failed:\n{completed.stderr[-2000:]}", file=sys.stderr)
        return {}
    results = {}
    for line in completed.stdout.splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            print(line, flush=True)
            if record.get("kind") == "measurement":
                results[record["paradigm"]] = record["images_per_s"]
    return results


def device_name():
    gpus = tf.config.list_physical_devices("GPU")
    return f"gpu:{len(gpus)}" if gpus else "cpu"


def environment():
    cpu = cpu_model()
    try:
        ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        ram_gib = None
    torch_version = None
    if importlib.util.find_spec("torch") is not None:
        from importlib.metadata import version
        torch_version = version("torch")
    return {"kind": "environment", "cpu": cpu, "cores": os.cpu_count(),
            "ram_gib": round(ram_gib, 1) if ram_gib else None, "device": device_name(),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "numpy": np.__version__, "torch": torch_version,
            "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "load_1m": load_1m()}


def print_table(results, torch_results):
    print()
    header = f"{'paradigm':<12}{'variant':<28}{'images/s':>10}{'/plain_fit':>12}{'/plain_tape':>13}{'/torch':>9}"
    print(header)
    print("-" * len(header))
    for paradigm, variants in results.items():
        if paradigm in torch_results:
            variants = {**variants, "torch": torch_results[paradigm]}
        fit_ref, tape_ref = variants.get("plain_fit"), variants.get("plain_tape")
        torch_ref = torch_results.get(paradigm)
        for name, value in variants.items():
            ratios = [f"{value / ref:.2f}x" if ref else "-" for ref in (fit_ref, tape_ref, torch_ref)]
            print(f"{paradigm:<12}{name:<28}{value:>10.1f}{ratios[0]:>12}{ratios[1]:>13}{ratios[2]:>9}")
    print("\nkeras-latent / plain ratios (in-memory):")
    for paradigm, variants in results.items():
        lib = variants["keras_latent"]
        print(f"  {paradigm}: /plain_fit {lib / variants['plain_fit']:.3f}, "
              f"/plain_tape {lib / variants['plain_tape']:.3f}"
              + (f", /torch {lib / torch_results[paradigm]:.3f}" if paradigm in torch_results else ""))
        if "keras_latent_pipeline" in variants:
            print(f"    pipeline / in-memory: {variants['keras_latent_pipeline'] / lib:.3f}")


def main(argv=None):
    args = parse_args(argv)
    keras.mixed_precision.set_global_policy(args.policy)
    print(precision_line(args.precision, args.policy), file=sys.stderr)
    emit(environment())
    # The pipeline variants repeat over this many images (reshuffled each pass, as in training).
    images, labels = load_images(args, PIPELINE_BATCHES * args.batch_size)
    results = {p: benchmark_paradigm(p, args, images, labels) for p in args.paradigms}
    torch_results = run_torch_twin(args)
    emit({"kind": "done", "load_1m": load_1m()})
    print_table(results, torch_results)
    return results


if __name__ == "__main__":
    main()
