"""CIFAR-10 autoencoder with a frozen-encoder probe (assignment 1.2.1).

Trains a convolutional autoencoder with a 128-d latent code on reconstruction (mean absolute
error), freezes its encoder, fits a linear classifier on the latent code, and writes both
`.keras` models, `metrics.json`, the plots and `report.md` into the output folder.

    python recipes/cifar_autoencoder.py [--data-dir DIR] [--epochs N] [--quick]
"""

from keras_latent import experiment

# Hyperparameters (chosen on the validation split; edit freely).
DATASET = "cifar10"
ARCHITECTURE = "cifar_conv"  # conv-conv-pool stages 32-64-128 with batch norm
LATENT_DIM = 128
EPOCHS = 30
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
LOSS = "mae"


def main(argv=None):
    args = experiment.recipe_parser(__doc__, name="cifar_autoencoder", epochs=EPOCHS,
                                    batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE
                                    ).parse_args(argv)
    splits, config, output_dir = experiment.setup(args, DATASET)
    metrics = experiment.autoencoder_experiment(
        splits, output_dir, architecture=ARCHITECTURE, latent_dim=LATENT_DIM, config=config,
        loss=LOSS, tsne=experiment.tsne_sample(args),
    )
    experiment.finish(output_dir, metrics)
    return metrics


if __name__ == "__main__":
    main()
