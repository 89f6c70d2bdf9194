"""Losses for representation learning; see docs/ARCHITECTURE.md."""

from keras_latent.losses.ntxent import NTXent, contrastive_accuracy, nt_xent

__all__ = ["NTXent", "contrastive_accuracy", "nt_xent"]
