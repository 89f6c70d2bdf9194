"""CIFAR-10 classification-guided encoder (assignment 1.2.2), in minutes on a CPU.

Trains airbench94's network (`cifar_fast`: frozen patch-whitening stem, three conv-pool-BN-GELU
blocks at 64/256/256 channels) with its 128-d latent code and a linear head on top, for 10
epochs with airbench's optimisation (`paradigms.FAST_CLASSIFIER_CONFIG`: Nesterov SGD, batch
1024, triangular learning rate, label smoothing 0.2, lookahead), +-2 px shifts and flips that
alternate per image from epoch to epoch.
Keeps the best epoch on the validation split as `checkpoints/best.keras`, writes the last
epoch's `classifier.keras`, `metrics.json` (accuracy with and without flip test-time
augmentation), the plots and `report.md`. Measured times and accuracies: docs/RESULTS.md.

    python recipes/cifar_classifier.py [--data-dir DIR] [--epochs N] [--precision P] [--quick]
"""

from keras_latent import flags

# Hyperparameters (edit freely); the rest of the optimisation is FAST_CLASSIFIER_CONFIG.
DATASET = "cifar10"
ARCHITECTURE = "cifar_fast"
LATENT_DIM = 128
HEAD_KWARGS = {"logit_scale": 1 / 9}  # airbench's output scaling
EPOCHS = 10
BATCH_SIZE = 1024
LEARNING_RATE = 1.5  # SGD, mean loss over the batch
# +-2 px shifts (reflection padding) and flips that alternate per image and epoch (airbench)
AUGMENT = {"translate": 2, "horizontal_flip": "alternate"}


def main(argv=None):
    args = flags.recipe_parser(__doc__, name="cifar_classifier", epochs=EPOCHS,
                               batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE
                               ).parse_args(argv)
    from keras_latent import experiment, paradigms  # TensorFlow loads here, after the flags

    splits, config, output_dir = experiment.setup(args, DATASET,
                                                  base=paradigms.FAST_CLASSIFIER_CONFIG)
    metrics = experiment.classifier_experiment(
        splits, output_dir, architecture=ARCHITECTURE, latent_dim=LATENT_DIM, config=config,
        head_kwargs=HEAD_KWARGS, augment=AUGMENT, tsne=experiment.tsne_sample(args),
    )
    experiment.finish(output_dir, metrics)
    return metrics


if __name__ == "__main__":
    flags.run_recipe(main)
