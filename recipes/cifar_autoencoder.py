"""CIFAR-10 autoencoder with a frozen-encoder probe (assignment 1.2.1).

Trains a convolutional autoencoder with a 128-d latent code on reconstruction (mean absolute
error), freezes its encoder, fits a small classifier on the latent code, and writes both
`.keras` models, `metrics.json`, the plots and `report.md` into the output folder.

    python recipes/cifar_autoencoder.py [--data-dir DIR] [--epochs N] [--quick]
"""

import autoencoder
from _plumbing import dataset_script, run_recipe

# The defaults are autoencoder.SETTINGS["cifar10"].
main = dataset_script(autoencoder.main, "cifar10", __doc__, __file__)

if __name__ == "__main__":
    run_recipe(main)
