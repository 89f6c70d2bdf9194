"""MNIST SimCLR with a frozen-encoder probe (assignment 1.2.3).

Trains the encoder with NT-Xent on two augmented views of each image (random resized crop and
blur for digits), watching a k-NN validation accuracy each epoch, then fits a small classifier
on the frozen 128-d latent code. `--denoise W` adds a decoder that reconstructs the clean image
from an augmented view with weight W (the contrastive + denoising hybrid).

    python recipes/mnist_simclr.py [--data-dir DIR] [--epochs N] [--denoise 1.0] [--quick]
"""

import simclr
from _plumbing import dataset_script, run_recipe

# The defaults are simclr.SETTINGS["mnist"].
main = dataset_script(simclr.main, "mnist", __doc__, __file__)

if __name__ == "__main__":
    run_recipe(main)
