"""MNIST classification-guided encoder (assignment 1.2.2).

Trains the encoder and a linear head on the 128-d latent code together with cross-entropy (no
decoder), keeps the best epoch on the validation split as `checkpoints/best.keras`, and
writes the last epoch's `.keras` model, `metrics.json`, the plots and `report.md` into the
output folder.

    python recipes/mnist_classifier.py [--data-dir DIR] [--epochs N] [--quick]
"""

import classifier
from _plumbing import dataset_script, run_recipe

# The defaults are classifier.SETTINGS["mnist"].
main = dataset_script(classifier.main, "mnist", __doc__, __file__)

if __name__ == "__main__":
    run_recipe(main)
