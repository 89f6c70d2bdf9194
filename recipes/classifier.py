"""Classification-guided encoder (assignment 1.2.2), on MNIST, Fashion-MNIST or CIFAR-10.

Trains the encoder and a linear head on the 128-d latent code together with cross-entropy (no
decoder), keeps the best epoch on the validation split as `checkpoints/best.keras`, and writes
the last epoch's `.keras` model, `metrics.json`, the plots and `report.md` into the output
folder. SETTINGS below holds each dataset's defaults; `mnist_classifier.py` and
`cifar_classifier.py` run it with theirs.

    python recipes/classifier.py [--dataset mnist|cifar10|fashion_mnist] [--epochs N] [--quick]
"""

from _plumbing import chosen_dataset, method_parser, run_experiment, run_recipe, start_run

# Hyperparameters by dataset (edit freely). Results of these defaults: docs/RESULTS.md (one
# row per recipe); why each value: its "What was tried" table, as named below.
# "base_config" names the paradigms config that supplies what the flags do not set (None:
# TrainingConfig's defaults).
SETTINGS = {
    "mnist": {
        # Two convs per stage, channels 32-64-128, dropout before the code, small crops:
        # each raised validation accuracy over plain mnist_conv ("MNIST classifier: crops,
        # dropout 0.3, two convs per stage"). (mnist_conv with base_channels=32,
        # convs_per_stage=2, dropout=0.3.)
        "architecture": {"kind": "conv", "channels": [32, 64, 128], "kernel_sizes": 3,
                         "strides": 2, "batch_norm": True, "activation": "relu",
                         "convs_per_stage": 2, "dropout": 0.3},
        "latent_dim": 128,
        # a head started at zero (uniform predictions): a --quick run's head no longer sits far
        # below a probe on the same codes ("MNIST classifier: zero-initialised head")
        "head_kwargs": {"zero_init": True},
        "epochs": 15,
        "batch_size": 128,
        "learning_rate": 2e-3,
        # small zooms and shifts, no flips
        "augment": {"crop_scale": (0.8, 1.0), "crop_ratio": (0.9, 1.1)},
        "base_config": None,
    },
    # airbench94's network (`cifar_fast`: frozen patch-whitening stem, three conv-pool-BN-GELU
    # blocks at 64/256/256 channels) with airbench's optimisation (FAST_CLASSIFIER_CONFIG:
    # Nesterov SGD, batch 1024, triangular learning rate, label smoothing 0.2, lookahead):
    # airbench's fast CIFAR-10 training; 10 epochs fit the 25-minute budget (docs/RESULTS.md,
    # "cifar_classifier.py").
    "cifar10": {
        "architecture": "cifar_fast",
        "latent_dim": 128,
        "head_kwargs": {"logit_scale": 1 / 9},  # airbench's output scaling
        "epochs": 10,
        "batch_size": 1024,
        "learning_rate": 1.5,  # SGD, mean loss over the batch
        # +-2 px shifts (reflection padding) and flips that alternate per image and epoch (airbench)
        "augment": {"translate": 2, "horizontal_flip": "alternate"},
        "base_config": "FAST_CLASSIFIER_CONFIG",
    },
}
# Fashion-MNIST has MNIST's image shape: MNIST's settings, not tuned for it.
SETTINGS["fashion_mnist"] = dict(SETTINGS["mnist"])


def main(argv=None, dataset=None, *, doc=__doc__, script=None):
    """Train and report on ``dataset`` (or --dataset) with its SETTINGS as the flags' defaults."""
    dataset = chosen_dataset(argv, dataset)
    settings = SETTINGS[dataset]
    args = start_run(method_parser(doc, "classifier", dataset, settings, script), argv)
    from keras_latent import experiments, paradigms  # TensorFlow loads here, after the flags

    base = settings["base_config"] and getattr(paradigms, settings["base_config"])
    return run_experiment(
        args, experiments.classifier_experiment, {"base": base},
        architecture=settings["architecture"], latent_dim=settings["latent_dim"],
        head_kwargs=settings["head_kwargs"], augment=settings["augment"],
    )


if __name__ == "__main__":
    run_recipe(main)
