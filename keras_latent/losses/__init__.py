"""Losses for representation learning; see docs/ARCHITECTURE.md."""

from keras_latent.losses.classification import SmoothedSparseCrossentropy
from keras_latent.losses.ntxent import NTXent, contrastive_accuracy, nt_xent

__all__ = ["NTXent", "SmoothedSparseCrossentropy", "contrastive_accuracy", "nt_xent"]
