"""Input pipeline throughput: how many images per second the contrastive CIFAR-10 pipeline delivers.

Iterates ``contrastive_dataset`` (two augmented views per image, batch 256 by default) with no
model attached, so the figure is the most the pipeline can feed a training step. Prints one JSON
line per variant (median over repeats, after warm-up batches), then a summary line.

    python benchmarks/pipeline_throughput.py --batches 40 --repeats 5
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from keras_latent.data import build_augmentation, contrastive_dataset, load_dataset  # noqa: E402
from keras_latent.evaluation.metadata import cpu_model  # noqa: E402

VARIANTS = {
    "no_augmentation": {"preset": "none"},
    "simclr_augmentation": {"preset": "simclr"},
    "simclr_augmentation_no_xla": {"preset": "simclr", "jit_compile": False},
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("KERAS_LATENT_DATA_DIR") or str(
        Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
    parser.add_argument("--data-dir", default=default_dir, help="folder with cifar10.npz")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--batches", type=int, default=40, help="timed batches per repeat")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the median is reported")
    parser.add_argument("--warmup", type=int, default=5, help="untimed batches (tracing, XLA compile)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    return parser.parse_args()


def measure(images, batch_size, batches, repeats, warmup, preset, jit_compile=True):
    augment = build_augmentation("cifar10", preset, jit_compile=jit_compile)
    iterator = iter(contrastive_dataset(images, batch_size, augment=augment, seed=0).repeat())
    for _ in range(warmup):
        next(iterator)
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(batches):
            view_1, _ = next(iterator)
        view_1.numpy()  # the batch really exists
        rates.append(batches * batch_size / (time.perf_counter() - start))
    return rates


def main():
    args = parse_args()
    start = time.perf_counter()
    images = load_dataset("cifar10", data_dir=args.data_dir, validation_fraction=0.0).train.images
    load_s = time.perf_counter() - start
    setup = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0],
        "tensorflow": tf.__version__,
        "batch_size": args.batch_size,
        "batches": args.batches,
        "repeats": args.repeats,
        "warmup": args.warmup,
        "dataset_load_s": round(load_s, 2),
    }
    print(json.dumps({"setup": setup}), flush=True)
    summary = {}
    for name in args.variants:
        rates = measure(images, args.batch_size, args.batches, args.repeats, args.warmup, **VARIANTS[name])
        median = statistics.median(rates)
        summary[name] = round(median, 1)
        print(json.dumps({
            "variant": name,
            "images_per_s": round(median, 1),  # source images; each yields two views
            "views_per_s": round(2 * median, 1),
            "batches_per_s": round(median / args.batch_size, 2),
            "min_images_per_s": round(min(rates), 1),
            "max_images_per_s": round(max(rates), 1),
        }), flush=True)
    setup["load_average_1m_end"] = os.getloadavg()[0]
    print(json.dumps({"summary": summary, "setup": setup}), flush=True)


if __name__ == "__main__":
    main()
