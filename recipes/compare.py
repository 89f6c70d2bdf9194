"""The six experiments and the random-encoder baseline, then one comparison report.

Runs the autoencoder, classification-guided and SimCLR recipes for MNIST and/or CIFAR-10, or for
Fashion-MNIST (each into its own folder, with the settings its SETTINGS table gives for the
dataset), the probe on an untrained encoder of the autoencoder's architecture, and writes
`comparison.md` with the table in the assignment's form and a grid of the latent t-SNE maps.

    python recipes/compare.py [--dataset mnist|cifar10|fashion_mnist|both] [--seeds N] [--quick]

With --seeds N each row shows the mean and a 95 % interval over the N seeds, and the report
lists the differences between methods that exceed the seed spread (Welch's t-test).
"""

from pathlib import Path

import autoencoder
import classifier
import simclr
from _plumbing import (
    DATASETS,
    discard_if_worker,
    probe_config,
    recipe_parser,
    release_run_folders,
    run_recipe,
    setup,
    start_run,
    tsne_sample,
)

from keras_latent import flags

#: The methods compared, each run with its own settings for the dataset; the random-encoder
#: baseline takes the autoencoder's architecture and probe.
METHODS = (autoencoder, classifier, simclr)


def main(argv=None):
    """Run every method on each dataset asked for, for each seed, then compare them; "both" is
    MNIST and CIFAR-10."""
    parser = flags.OneLineParser(
        prog="python recipes/compare.py", description=__doc__.strip().splitlines()[0],
        epilog="Other flags (--data-dir, --epochs, --batch-size, --seed, --limit, --quick, "
               "--quiet, --precision, --tensorboard, --strategy) are passed to every recipe.",
    )
    parser.add_argument("--dataset", choices=[*DATASETS, "both"], default="mnist")
    parser.add_argument("--output", type=flags.output_folder, default="runs/compare")
    parser.add_argument("--seeds", type=flags.positive_int, default=1,
                        help="run every method with seeds --seed, --seed + 1, ... (each in "
                             "OUTPUT/<dataset>/seed_<n>/, resuming on its own) and report the "
                             "mean and a 95 %% interval of each figure")
    args, passthrough = parser.parse_known_args(argv)
    datasets = ["mnist", "cifar10"] if args.dataset == "both" else [args.dataset]
    # The flags passed on to every recipe are checked for each dataset (--data-dir must hold
    # it), and the output folder held, now, before TensorFlow loads.
    for dataset in reversed(datasets):
        recipe_args = [*passthrough, "--dataset", dataset, "--output", str(args.output)]
        parser = recipe_parser(__doc__, name="compare", epochs=1, batch_size=1, learning_rate=1.0)
        first_seed = (start_run(parser, recipe_args) if dataset == datasets[0]
                      else parser.parse_args(recipe_args)).seed
    try:
        _compare_all(args, datasets, passthrough, first_seed)
    finally:
        release_run_folders(args.output)


def _compare_all(args, datasets, passthrough, first_seed):
    """Every dataset asked for: its methods for each seed, then their comparison."""
    # TensorFlow loads here, after the flags.
    from keras_latent.evaluation import compare_runs

    seeds = range(first_seed, first_seed + args.seeds)
    for dataset in datasets:
        root = Path(args.output) / dataset
        rows = [[] for _ in range(len(METHODS) + 1)]  # each method's runs, then the baseline's
        for seed in seeds:
            seed_root = root if args.seeds == 1 else root / f"seed_{seed}"
            for row, folder in zip(rows, _run_seed(dataset, [*passthrough, "--seed", str(seed)],
                                                   seed_root)):
                row.append(folder)
        if discard_if_worker(rows[-1][-1]):
            continue  # a multi-worker run: the chief compares
        report = compare_runs(rows, root)
        print(f"\nComparison for {dataset}: {report['report']}")


def _run_seed(dataset, passthrough, root):
    """Every method and the random baseline with one seed, each in its folder under ``root``;
    returns the folders, methods first."""
    run_dirs = []
    for method in METHODS:
        name = method.__name__
        print(f"\n=== {dataset}: {name} ({root}) ===")
        method.main([*passthrough, "--dataset", dataset, "--output", str(root / name)])
        run_dirs.append(root / name)
    run_dirs.append(_random_baseline(dataset, passthrough, root / "random_encoder"))
    return run_dirs


def _random_baseline(dataset, passthrough, output):
    """The probe on an untrained encoder of the autoencoder's architecture, with the
    autoencoder's batch size and probe; returns the run folder."""
    from keras_latent import experiments

    print(f"\n=== {dataset}: random encoder baseline ===")
    settings = autoencoder.SETTINGS[dataset]
    recipe_args = recipe_parser(
        "", name="random_baseline", epochs=1, batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
    ).parse_args([*passthrough, "--output", str(output)])
    splits, config, output_dir = setup(recipe_args, dataset)
    experiments.random_baseline_experiment(
        splits, output_dir, architecture=settings["architecture"],
        latent_dim=settings["latent_dim"], config=config, probe=settings["probe"],
        probe_config=probe_config(settings),
        tsne=tsne_sample(recipe_args),
    )
    return output_dir


if __name__ == "__main__":
    run_recipe(main)
