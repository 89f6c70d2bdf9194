"""Search spaces: defaults, overrides, one tiny trial each, and fixed arguments checked early."""

import math

import keras
import keras_tuner
import numpy as np
import pytest

from keras_latent.models import Autoencoder, Classifier, SimCLR
from tuning.hypermodels import (
    AutoencoderHyperModel,
    ClassifierHyperModel,
    EncoderSpace,
    SearchSpaceError,
    SimCLRHyperModel,
)

CASES = [
    (AutoencoderHyperModel, Autoencoder, "val_mae", {}),
    (ClassifierHyperModel, Classifier, "val_accuracy", {}),
    (SimCLRHyperModel, SimCLR, "val_knn_accuracy", {"max_projection_width": 32,
                                                      "projection_dim": 16}),
]
IDS = ["autoencoder", "classifier", "simclr"]


def _convs(encoder):
    return [layer for layer in encoder.layers if isinstance(layer, keras.layers.Conv2D)]


def _learning_rate(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


@pytest.mark.parametrize("hypermodel_class, model_class, objective, kwargs", CASES, ids=IDS)
def test_builds_with_defaults_and_trains_one_trial(hypermodel_class, model_class, objective,
                                                   kwargs, mnist_tiny, tiny_space, tiny_config):
    hypermodel = hypermodel_class(mnist_tiny, space=tiny_space, config=tiny_config, **kwargs)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)

    assert isinstance(model, model_class)
    assert hypermodel.objective.name == objective
    assert hp.values["depth"] == 1 and hp.values["channels_0"] == 4
    assert hp.values["kernel_size_0"] == 3
    assert hp.values["learning_rate"] == pytest.approx(1e-3)
    assert [conv.filters for conv in _convs(model.encoder)] == [4]
    assert model.encoder.output_shape == (None, 8)
    assert _learning_rate(model) == pytest.approx(1e-3)

    history = hypermodel.fit(hp, model)
    assert isinstance(history, keras.callbacks.History)
    assert len(history.history[objective]) == 1
    value = history.history[objective][-1]
    assert math.isfinite(value)
    if objective != "val_mae":
        assert 0.0 <= value <= 1.0


@pytest.mark.parametrize("hypermodel_class, model_class, objective, kwargs", CASES, ids=IDS)
def test_fixed_values_override_the_defaults(hypermodel_class, model_class, objective, kwargs,
                                            mnist_tiny, tiny_space, tiny_config):
    hypermodel = hypermodel_class(mnist_tiny, space=tiny_space, config=tiny_config, **kwargs)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("depth", 2)
    hp.Fixed("channels_0", 8)
    hp.Fixed("channels_1", 4)
    hp.Fixed("kernel_size_1", 5)
    hp.Fixed("learning_rate", 5e-3)
    model = hypermodel.build(hp)

    convs = _convs(model.encoder)
    assert [conv.filters for conv in convs] == [8, 4]
    assert [conv.kernel_size for conv in convs] == [(3, 3), (5, 5)]
    assert _learning_rate(model) == pytest.approx(5e-3)


def test_classifier_mlp_head_is_conditional(mnist_tiny, tiny_space, tiny_config):
    hypermodel = ClassifierHyperModel(mnist_tiny, space=tiny_space, config=tiny_config,
                                      max_head_width=64)
    linear = keras_tuner.HyperParameters()
    hypermodel.build(linear)
    assert linear.values["head"] == "linear"
    assert "head_width" not in linear.values

    hp = keras_tuner.HyperParameters()
    hp.Fixed("head", "mlp")
    hp.Fixed("head_width", 32)
    model = hypermodel.build(hp)
    dense_widths = [layer.units for layer in model.head.layers
                    if isinstance(layer, keras.layers.Dense)]
    assert dense_widths == [32, mnist_tiny.num_classes]
    assert model(np.zeros((2, *mnist_tiny.image_shape), "float32")).shape == (2, 10)


def test_simclr_declares_temperature_projection_and_augmentation(mnist_tiny, tiny_space,
                                                                 tiny_config):
    hypermodel = SimCLRHyperModel(mnist_tiny, space=tiny_space, config=tiny_config,
                                  max_projection_width=64, projection_dim=16)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("temperature", 0.1)
    hp.Fixed("projection_width", 32)
    model = hypermodel.build(hp)
    assert model.temperature == pytest.approx(0.1)
    assert model.projection_head.output_shape == (None, 16)
    assert hp.values["augment_strength"] == pytest.approx(1.0)
    assert {"temperature", "projection_width", "augment_strength"} <= set(hp.values)


def test_bad_fixed_arguments_fail_before_any_trial(mnist_tiny, tiny_space, tiny_config):
    with pytest.raises(SearchSpaceError, match="powers of two"):
        EncoderSpace(min_channels=6)
    with pytest.raises(SearchSpaceError, match="min_depth <= max_depth"):
        EncoderSpace(min_depth=3, max_depth=2)
    with pytest.raises(SearchSpaceError, match="max_depth <= 5"):
        AutoencoderHyperModel(mnist_tiny, space=EncoderSpace(max_depth=6), config=tiny_config)
    with pytest.raises(SearchSpaceError, match="output_dir must be None"):
        AutoencoderHyperModel(mnist_tiny, space=tiny_space,
                              config=tiny_config.replace(output_dir="somewhere"))
    # A SimCLR batch larger than the data is shrunk to one batch of it, as train_simclr does.
    with pytest.warns(UserWarning, match="one batch of all of them"):
        shrunk = SimCLRHyperModel(mnist_tiny, space=tiny_space,
                                  config=tiny_config.replace(batch_size=10_000))
    assert shrunk.config.batch_size == len(mnist_tiny.train)
    with pytest.raises(SearchSpaceError, match="max_head_width"):
        ClassifierHyperModel(mnist_tiny, space=tiny_space, config=tiny_config,
                             max_head_width=100)


def test_autoencoder_searches_around_a_preset_with_masking_ranked_by_knn(mnist_tiny,
                                                                          tiny_config):
    space = EncoderSpace(preset="mnist_conv", kernel_sizes=(3, 5), min_channels=4,
                         max_channels=8, latent_dims=(8,))
    hypermodel = AutoencoderHyperModel(mnist_tiny, space=space, config=tiny_config,
                                       objective="knn", mask_ratios=(0.0, 0.5),
                                       knn_examples=100)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("base_channels", 4)
    hp.Fixed("kernel_size", 5)
    hp.Fixed("mask_ratio", 0.5)
    model = hypermodel.build(hp)
    assert "depth" not in hp.values
    convs = _convs(model.encoder)
    assert [conv.filters for conv in convs] == [4, 8, 16]  # mnist_conv's pyramid from 4
    assert {conv.kernel_size for conv in convs} == {(5, 5)}
    assert hypermodel.objective.name == "val_knn_accuracy"

    train, _, monitors = hypermodel.datasets(hp)
    noisy, clean = next(iter(train))
    assert np.any(noisy.numpy() == 0.5) and not np.array_equal(noisy.numpy(), clean.numpy())
    assert len(monitors) == 1
    history = hypermodel.fit(hp, model).history
    assert 0.0 <= history["val_knn_accuracy"][-1] <= 1.0 and "val_mae" in history

    with pytest.raises(SearchSpaceError, match="objective"):
        AutoencoderHyperModel(mnist_tiny, space=space, config=tiny_config, objective="loss")
    with pytest.raises(SearchSpaceError, match="mask_ratios"):
        AutoencoderHyperModel(mnist_tiny, space=space, config=tiny_config, mask_ratios=(1.0,))
    with pytest.raises(SearchSpaceError, match="unknown preset"):
        EncoderSpace(preset="nope")
