"""The tuner compiles each paradigm's model exactly as the paradigm's own training does: the same
loss (label smoothing included), optimiser class and settings, and learning-rate schedule."""

import keras
import keras_tuner
import pytest

from keras_latent import paradigms
from keras_latent.paradigms import autoencoder, classifier, contrastive
from tuning.hypermodels import AutoencoderHyperModel, ClassifierHyperModel, SimCLRHyperModel

CASES = [
    (AutoencoderHyperModel, autoencoder, "train_autoencoder", {}),
    (ClassifierHyperModel, classifier, "train_classifier", {}),
    (SimCLRHyperModel, contrastive, "train_simclr", {"knn_examples": 0}),
]


def _compiled(model):
    """What compile decided, comparable across two models of different architectures."""
    loss = model.loss if isinstance(model.loss, str) else keras.losses.serialize(model.loss)
    optimizer = model.optimizer.get_config()
    optimizer.pop("name")
    return {"loss": loss, "optimizer": type(model.optimizer).__name__, **optimizer}


@pytest.mark.parametrize("hypermodel_class, module, train, kwargs", CASES,
                         ids=["autoencoder", "classifier", "simclr"])
def test_tuner_compiles_as_the_paradigm_trains(hypermodel_class, module, train, kwargs,
                                               mnist_tiny, tiny_space, tiny_config, monkeypatch):
    # A recipe-like config: SGD with label smoothing, lookahead off, the tuner's default rate.
    config = tiny_config.replace(optimizer="sgd", momentum=0.85, label_smoothing=0.2,
                                 learning_rate=1e-3, schedule="triangular")
    tuned = hypermodel_class(mnist_tiny, space=tiny_space, config=config).build(
        keras_tuner.HyperParameters())

    monkeypatch.setattr(module, "fit", lambda model, *args, **kw: {})  # compile, do not train
    trained = getattr(paradigms, train)(mnist_tiny, architecture="mnist_conv", latent_dim=8,
                                        config=config, **kwargs).model

    assert _compiled(tuned) == _compiled(trained)
    if train == "train_classifier":
        assert keras.losses.serialize(trained.loss)["config"]["label_smoothing"] == 0.2
