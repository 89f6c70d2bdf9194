"""CIFAR-10 classification-guided encoder (assignment 1.2.2).

Trains the encoder and a linear head on the 128-d latent code together with cross-entropy (no
decoder), keeps the best epoch on the validation split as `checkpoints/best.keras`, and
writes the last epoch's `.keras` model, `metrics.json`, the plots and `report.md` into the
output folder.

    python recipes/cifar_classifier.py [--data-dir DIR] [--epochs N] [--quick]
"""

from keras_latent import experiment

# Hyperparameters (edit freely). Common CIFAR-10 settings for this kind of model, not yet
# tuned here: full-length CIFAR-10 runs need a GPU (docs/RESULTS.md says what was measured).
DATASET = "cifar10"
ARCHITECTURE = "cifar_strong"  # VGG-style 64-128-256-512, global average pool
LATENT_DIM = 128
EPOCHS = 60
BATCH_SIZE = 128
LEARNING_RATE = 2e-3
AUGMENT = "light"  # no augmentation for digits; random crop + flip for CIFAR-10


def main(argv=None):
    args = experiment.recipe_parser(__doc__, name="cifar_classifier", epochs=EPOCHS,
                                    batch_size=BATCH_SIZE, learning_rate=LEARNING_RATE
                                    ).parse_args(argv)
    splits, config, output_dir = experiment.setup(args, DATASET)
    metrics = experiment.classifier_experiment(
        splits, output_dir, architecture=ARCHITECTURE, latent_dim=LATENT_DIM, config=config,
        augment=AUGMENT, tsne=experiment.tsne_sample(args),
    )
    experiment.finish(output_dir, metrics)
    return metrics


if __name__ == "__main__":
    main()
