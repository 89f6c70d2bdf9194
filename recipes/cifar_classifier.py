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

import classifier
from _plumbing import dataset_script, run_recipe

# The defaults are classifier.SETTINGS["cifar10"].
main = dataset_script(classifier.main, "cifar10", __doc__, __file__)

if __name__ == "__main__":
    run_recipe(main)
