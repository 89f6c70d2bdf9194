"""Autoencoder with a frozen-encoder probe (assignment 1.2.1), on MNIST, Fashion-MNIST or CIFAR-10.

Trains a convolutional autoencoder with a 128-d latent code on reconstruction (mean absolute
error), freezes its encoder, fits a small classifier on the latent code, and writes both
`.keras` models, `metrics.json`, the plots and `report.md` into the output folder. SETTINGS
below holds each dataset's defaults; `mnist_autoencoder.py` and `cifar_autoencoder.py` run it
with theirs.

    python recipes/autoencoder.py [--dataset mnist|cifar10|fashion_mnist] [--epochs N] [--quick]
"""

from _plumbing import (
    chosen_dataset,
    method_parser,
    probe_config,
    run_experiment,
    run_recipe,
    start_run,
)

# The classifier fitted on the frozen encoder: one hidden layer of 512, which beat a linear head
# on MNIST (docs/RESULTS.md, "What was tried": "MLP probe instead of linear"); metrics.json
# still reports a linear probe and k-NN on the same codes.
MLP_PROBE = {"head": "mlp", "head_kwargs": {"widths": [512], "dropout": 0.3}}

# Hyperparameters by dataset (edit freely). Results of these defaults: docs/RESULTS.md (one
# row per recipe); why each value: its "What was tried" table, as named below.
SETTINGS = {
    "mnist": {
        # Three stride-2 conv stages 32-64-128 with batch norm (the mnist_conv preset with
        # base_channels=32): lower MAE than mnist_conv's 16-32-64 ("channels 32-64-128").
        "architecture": {"kind": "conv", "channels": [32, 64, 128], "kernel_sizes": 3,
                         "strides": 2, "batch_norm": True, "activation": "relu"},
        "latent_dim": 128,
        "epochs": 30,
        "batch_size": 128,
        "learning_rate": 2e-3,
        "loss": "mae",
        # The probe also trains on the codes of 4 shifted copies (+-2 px) of each image
        # ("probe also on 4 shifted copies").
        "probe": {**MLP_PROBE, "augment": "shift_flip", "augmented_copies": 4},
        "probe_learning_rate": 3e-3,
    },
    # Sized for about 20 minutes on a 2-core CPU with bf16 instructions (--precision auto); on
    # a faster machine raise --epochs. Measured times: docs/RESULTS.md, "cifar_autoencoder.py".
    "cifar10": {
        # The cifar_conv preset (conv-conv-pool stages 32-64-128 with batch norm) with SiLU
        # and average pooling, each better codes and MAE ("SiLU, 9 epochs", "average
        # pooling"); 9 epochs because SiLU's epochs are slower.
        "architecture": {"kind": "conv", "channels": [32, 64, 128], "kernel_sizes": 3,
                         "strides": 2, "pooling": "avg", "convs_per_stage": 2,
                         "batch_norm": True, "activation": "silu", "dropout": 0.0},
        # Denoising: the encoder sees each image with Gaussian noise (sd 0.1), the decoder must
        # return it clean; with no dropout before the code, better codes at no cost in time
        # ("no dropout before the code + input noise sd 0.1").
        "augment": {"noise_std": 0.1},
        "latent_dim": 128,
        "epochs": 9,
        "batch_size": 128,
        "learning_rate": 2e-3,
        "loss": "mae",
        # A wider head than MNIST's ("1 head of 1024, dropout 0.5"), trained also on the codes
        # of 2 shifted / mirrored copies of each image (4 copies cost about twice the time
        # for no test gain), as 4 heads side by side whose probabilities are averaged: the heads
        # differ by seed alone, and their mean is steadier ("3 heads side by side", "4 heads
        # for 40 epochs").
        "probe": {"head": "mlp", "head_kwargs": {"widths": [1024], "dropout": 0.5},
                  "augment": "shift_flip", "augmented_copies": 2, "members": 4},
        "probe_learning_rate": 3e-3,
        "probe_epochs": 40,
        # Batches of 512 codes: the same accuracy in less time ("probe batches of 512").
        "probe_batch_size": 512,
    },
}
# Fashion-MNIST has MNIST's image shape: MNIST's settings, not tuned for it.
SETTINGS["fashion_mnist"] = dict(SETTINGS["mnist"])


def main(argv=None, dataset=None, *, doc=__doc__, script=None):
    """Train and report on ``dataset`` (or --dataset) with its SETTINGS as the flags' defaults."""
    dataset = chosen_dataset(argv, dataset)
    settings = SETTINGS[dataset]
    args = start_run(method_parser(doc, "autoencoder", dataset, settings, script), argv)
    from keras_latent import experiments  # TensorFlow loads here, after the flags

    return run_experiment(
        args, experiments.autoencoder_experiment, architecture=settings["architecture"],
        latent_dim=settings["latent_dim"], loss=settings["loss"],
        augment=settings.get("augment"), probe=settings["probe"],
        probe_config=probe_config(settings),
    )


if __name__ == "__main__":
    run_recipe(main)
