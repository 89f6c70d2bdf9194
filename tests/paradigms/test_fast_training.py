"""The fast-classifier pieces: the triangular schedule, smoothed cross-entropy against a NumPy
reference, the optimiser the config asks for, and a short fit of the fast encoder that learns."""

import keras
import numpy as np
import pytest

from keras_latent import paradigms
from keras_latent.losses import SmoothedSparseCrossentropy
from keras_latent.paradigms import TrainingConfig
from keras_latent.paradigms.fitting import make_optimizer
from keras_latent.schedules import Triangular


def test_triangular_rises_to_the_peak_then_falls_to_the_end():
    schedule = Triangular(2.0, total_steps=100, peak_fraction=0.25, start=0.2, end=0.05)
    values = [float(schedule(step)) for step in range(101)]
    assert values[0] == pytest.approx(0.4)
    assert max(values) == pytest.approx(2.0) and int(np.argmax(values)) == 25
    assert values[100] == pytest.approx(0.1)
    assert np.all(np.diff(values[:26]) > 0) and np.all(np.diff(values[25:]) < 0)
    assert Triangular.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_smoothed_crossentropy_matches_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)).astype("float32")
    labels = np.array([0, 1, 2, 3, 1, 0])
    smoothing = 0.2
    targets = np.full((6, 4), smoothing / 4) + (1 - smoothing) * np.eye(4)[labels]
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    expected = -(targets * log_softmax).sum(axis=1).mean()
    got = float(SmoothedSparseCrossentropy(smoothing)(labels, logits))
    assert got == pytest.approx(expected, rel=1e-5)
    plain = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(SmoothedSparseCrossentropy(0.0)(labels, logits)) == pytest.approx(float(plain), rel=1e-6)


def test_config_builds_nesterov_sgd_on_a_triangular_schedule():
    config = paradigms.FAST_CLASSIFIER_CONFIG
    optimizer = make_optimizer(config, steps_per_epoch=44)
    assert isinstance(optimizer, keras.optimizers.SGD) and optimizer.nesterov
    assert optimizer.momentum == pytest.approx(0.85)
    assert optimizer._learning_rate.total_steps == 440 and config.lookahead == 0.95
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainingConfig(optimizer="lamb")
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainingConfig(label_smoothing=1.5)


def test_lookahead_averages_late_and_ends_on_the_average():
    from keras_latent.paradigms.lookahead import Lookahead

    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(keras.optimizers.SGD(0.1), "mse")
    x, y = np.ones((8, 1), "float32"), np.full((8, 1), 3.0, "float32")
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    plain.compile(keras.optimizers.SGD(0.1), "mse")
    plain.fit(x, y, batch_size=1, epochs=1, verbose=0, shuffle=False)
    model.fit(x, y, batch_size=1, epochs=1, verbose=0, shuffle=False,
              callbacks=[Lookahead(total_steps=8, base=0.5, every=2, power=1.0)])
    w_plain, w_slow = float(plain.get_weights()[0][0, 0]), float(model.get_weights()[0][0, 0])
    start = 0.0  # both start from the same weight; the averaged one lags behind towards 3
    assert abs(w_slow - 3.0) > abs(w_plain - 3.0) and w_slow != start


def test_fast_encoder_learns_cifar_in_a_short_fit(data_dir):
    from keras_latent.data import load_dataset

    splits = load_dataset("cifar10", data_dir=data_dir, seed=0).limit(1024, seed=0)
    config = paradigms.FAST_CLASSIFIER_CONFIG.replace(epochs=4, batch_size=128, verbose=0)
    architecture = {**paradigms.fitting.architecture_config("cifar_fast"), "channels": [16, 32, 32]}
    run = paradigms.train_classifier(splits, architecture=architecture, augment="shift_flip",
                                     head_kwargs={"logit_scale": 1 / 9}, config=config)
    loss = run.history["loss"]
    assert loss[-1] < loss[0] - 0.1
    logits = run.model.predict(splits.val.images.astype("float32") / 255.0, verbose=0)
    assert np.mean(logits.argmax(1) == splits.val.labels) > 0.25  # chance is 0.10
