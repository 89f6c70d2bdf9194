"""MNIST autoencoder with a frozen-encoder probe (assignment 1.2.1).

Trains a convolutional autoencoder with a 128-d latent code on reconstruction (mean absolute
error), freezes its encoder, fits a small classifier on the latent code, and writes both
`.keras` models, `metrics.json`, the plots and `report.md` into the output folder.

    python recipes/mnist_autoencoder.py [--data-dir DIR] [--epochs N] [--quick]
"""

from keras_latent import flags

# Hyperparameters (edit freely); validation-split results in docs/RESULTS.md.
DATASET = "mnist"
# Three stride-2 conv stages 32-64-128 with batch norm (the mnist_conv preset with
# base_channels=32): validation MAE 0.0090 after 30 epochs, where the 16-32-64 default of
# mnist_conv reached 0.0106.
ARCHITECTURE = {"kind": "conv", "channels": [32, 64, 128], "kernel_sizes": 3, "strides": 2,
                "batch_norm": True, "activation": "relu"}
LATENT_DIM = 128
EPOCHS = 30
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
LOSS = "mae"

# The classifier fitted on the frozen encoder: one hidden layer of 512. On MNIST it beat a
# linear head on validation (autoencoder codes 98.6 % vs 92.9 %, SimCLR codes 99.1 % vs 98.4 %);
# metrics.json still reports a linear probe and k-NN on the same codes.
PROBE = {"head": "mlp", "head_kwargs": {"widths": [512], "dropout": 0.3}}
PROBE_LEARNING_RATE = 3e-3


def main(argv=None):
    args = flags.recipe_parser(__doc__, name="mnist_autoencoder", epochs=EPOCHS,
                               batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE
                               ).parse_args(argv)
    from keras_latent import experiment, paradigms  # TensorFlow loads here, after the flags

    splits, config, output_dir = experiment.setup(args, DATASET)
    metrics = experiment.autoencoder_experiment(
        splits, output_dir, architecture=ARCHITECTURE, latent_dim=LATENT_DIM, config=config,
        loss=LOSS, probe=PROBE,
        probe_config=paradigms.PROBE_CONFIG.replace(learning_rate=PROBE_LEARNING_RATE),
        tsne=experiment.tsne_sample(args),
    )
    experiment.finish(output_dir, metrics)
    return metrics


if __name__ == "__main__":
    flags.run_recipe(main)
