"""The six experiments and the random-encoder baseline, then one comparison report.

Runs the autoencoder, classification-guided and SimCLR recipes for MNIST and/or CIFAR-10 (each
into its own folder, with the recipe's own defaults), the probe on an untrained encoder of the
autoencoder's architecture, and writes `comparison.md` with the table in the assignment's form
and a grid of the latent t-SNE maps.

    python recipes/compare.py [--dataset mnist|cifar10|both] [--data-dir DIR] [--quick]
"""

import argparse
from pathlib import Path

import cifar_autoencoder
import cifar_classifier
import cifar_simclr
import mnist_autoencoder
import mnist_classifier
import mnist_simclr

from keras_latent import flags

RECIPES = {
    "mnist": (mnist_autoencoder, mnist_classifier, mnist_simclr),
    "cifar10": (cifar_autoencoder, cifar_classifier, cifar_simclr),
}


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python recipes/compare.py", description=__doc__.strip().splitlines()[0],
        epilog="Other flags (--data-dir, --epochs, --batch-size, --seed, --limit, --quick, "
               "--quiet, --precision, --tensorboard, --strategy) are passed to every recipe.",
    )
    parser.add_argument("--dataset", choices=["mnist", "cifar10", "both"], default="mnist")
    parser.add_argument("--output", type=flags.output_folder, default="runs/compare")
    args, passthrough = parser.parse_known_args(argv)
    # The flags passed on to every recipe are checked now, before TensorFlow loads.
    flags.recipe_parser(__doc__, name="compare", epochs=1, batch_size=1, learning_rate=1.0
                        ).parse_args([*passthrough, "--output", str(args.output)])
    # TensorFlow loads here, after the flags.
    from keras_latent import experiment, paradigms
    from keras_latent.evaluation import compare_runs

    datasets = ["mnist", "cifar10"] if args.dataset == "both" else [args.dataset]
    for dataset in datasets:
        root = Path(args.output) / dataset
        run_dirs = []
        for recipe in RECIPES[dataset]:
            name = recipe.__name__.split("_", 1)[1]
            print(f"\n=== {dataset}: {name} ===")
            recipe.main([*passthrough, "--output", str(root / name)])
            run_dirs.append(root / name)
        print(f"\n=== {dataset}: random encoder baseline ===")
        baseline = RECIPES[dataset][0]
        recipe_args = flags.recipe_parser(
            "", name="random_baseline", epochs=1, batch_size=baseline.BATCH_SIZE,
            learning_rate=baseline.LEARNING_RATE,
        ).parse_args([*passthrough, "--output", str(root / "random_encoder")])
        splits, config, output_dir = experiment.setup(recipe_args, dataset)
        experiment.random_baseline_experiment(
            splits, output_dir, architecture=baseline.ARCHITECTURE,
            latent_dim=baseline.LATENT_DIM, config=config, probe=baseline.PROBE,
            probe_config=paradigms.PROBE_CONFIG.replace(learning_rate=baseline.PROBE_LEARNING_RATE),
            tsne=experiment.tsne_sample(recipe_args),
        )
        run_dirs.append(output_dir)
        if experiment.discard_if_worker(output_dir):
            continue  # a multi-worker run: the chief compares
        report = compare_runs(run_dirs, root)
        print(f"\nComparison for {dataset}: {report['report']}")


if __name__ == "__main__":
    flags.run_recipe(main)
