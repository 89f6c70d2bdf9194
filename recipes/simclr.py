"""SimCLR with a frozen-encoder probe (assignment 1.2.3), on MNIST, Fashion-MNIST or CIFAR-10.

Trains the encoder with NT-Xent on two augmented views of each image (the dataset's SimCLR
augmentation: random resized crop and blur for digits; crop, flip, colour jitter and grayscale
for CIFAR-10), watching a k-NN validation accuracy each epoch, then fits a small classifier on
the frozen 128-d latent code. `--denoise W` adds a decoder that reconstructs the clean image
from an augmented view with weight W (the contrastive + denoising hybrid). SETTINGS below holds
each dataset's defaults; `mnist_simclr.py` and `cifar_simclr.py` run it with theirs.

    python recipes/simclr.py [--dataset mnist|cifar10|fashion_mnist] [--denoise 1.0] [--quick]
"""

from _plumbing import (
    chosen_dataset,
    method_parser,
    probe_config,
    run_experiment,
    run_recipe,
    start_run,
)
from autoencoder import MLP_PROBE

from keras_latent import flags

# Hyperparameters by dataset (edit freely). Results of these defaults: docs/RESULTS.md (one
# row per recipe); why each value: its "What was tried" table, as named below.
SETTINGS = {
    "mnist": {
        "architecture": "mnist_conv",
        "latent_dim": 128,
        "epochs": 30,
        "batch_size": 256,
        "learning_rate": 2e-3,
        "temperature": 0.2,
        "projection_hidden": 512,
        "projection_dim": 128,
        "warmup_epochs": 2,
        # One hidden layer of 512 (see autoencoder.MLP_PROBE), also trained on the codes of 4
        # shifted copies (+-2 px) of each image ("probe also on 4 shifted copies").
        "probe": {**MLP_PROBE, "augment": "shift_flip", "augmented_copies": 4},
        "probe_learning_rate": 3e-3,
    },
    # Sized for a 90-minute budget on a 2-core CPU with bfloat16 (--precision auto): the fast
    # CIFAR-10 encoder (airbench94's network with the 128-d code) for 16 epochs (measured time:
    # docs/RESULTS.md, "cifar_simclr.py"). SimCLR keeps improving for hundreds of epochs: on a
    # faster machine raise --epochs (not measured).
    "cifar10": {
        "architecture": "cifar_fast",
        "latent_dim": 128,
        "epochs": 16,
        "batch_size": 512,
        "learning_rate": 1e-3,
        # The SimCLR search's best, which also won at full length ("SimCLR temperature 0.2").
        "temperature": 0.2,
        "projection_hidden": 512,
        "projection_dim": 128,
        "warmup_epochs": 1,
        "probe": MLP_PROBE,
        "probe_learning_rate": 3e-3,
    },
}
# Fashion-MNIST has MNIST's image shape: MNIST's settings, not tuned for it.
SETTINGS["fashion_mnist"] = dict(SETTINGS["mnist"])


def main(argv=None, dataset=None, *, doc=__doc__, script=None):
    """Train and report on ``dataset`` (or --dataset) with its SETTINGS as the flags' defaults."""
    dataset = chosen_dataset(argv, dataset)
    settings = SETTINGS[dataset]
    parser = method_parser(doc, "simclr", dataset, settings, script)
    parser.add_argument("--temperature", type=flags.positive_float,
                        default=settings["temperature"], help="NT-Xent temperature")
    parser.add_argument("--denoise", type=flags.non_negative_float, default=0.0,
                        metavar="WEIGHT",
                        help="weight of the denoising reconstruction loss (0 = plain SimCLR)")
    args = start_run(parser, argv)
    from keras_latent import experiments  # TensorFlow loads here, after the flags

    return run_experiment(
        args, experiments.simclr_experiment, {"warmup_epochs": settings["warmup_epochs"]},
        architecture=settings["architecture"], latent_dim=settings["latent_dim"],
        temperature=args.temperature, reconstruction_weight=args.denoise,
        projection_hidden=settings["projection_hidden"],
        projection_dim=settings["projection_dim"], probe=settings["probe"],
        probe_config=probe_config(settings),
    )


if __name__ == "__main__":
    run_recipe(main)
