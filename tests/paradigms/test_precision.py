"""The precision resolver picks bf16 only where the hardware runs it natively, and a run in
bfloat16 trains as well as one in float32 and saves a model that predicts in float32."""

import os

import numpy as np
import pytest

from keras_latent.paradigms import TrainingConfig
from keras_latent.paradigms import precision as precision_module
from keras_latent.paradigms.precision import PrecisionError, precision_line, resolve_precision
from tests.saving_utils import assert_reloads_in_fresh_process

ZEN4 = {"avx2", "avx512f", "avx512_bf16", "fma"}
SAPPHIRE_RAPIDS = {"avx2", "avx512f", "amx_bf16", "amx_tile"}
SKYLAKE = {"avx2", "avx512f", "fma"}


@pytest.mark.parametrize("flags, gpus, expected", [
    (ZEN4, (), "mixed_bfloat16"),
    (SAPPHIRE_RAPIDS, (), "mixed_bfloat16"),
    (SKYLAKE, (), "float32"),  # bf16 emulated: many times slower (TensorFlow issue 42422)
    (set(), (), "float32"),  # unknown CPU (e.g. not Linux): the safe choice
    (SKYLAKE, ((8, 0),), "mixed_bfloat16"),  # A100
    (SKYLAKE, ((9, 0), (9, 0)), "mixed_bfloat16"),  # two H100
    (ZEN4, ((7, 5),), "mixed_float16"),  # T4: the GPU decides, not the CPU
    (SKYLAKE, ((8, 6), (7, 0)), "mixed_float16"),  # a mix: what every GPU can run
])
def test_auto_follows_the_hardware(flags, gpus, expected):
    assert resolve_precision("auto", cpu_flags=flags, gpus=gpus) == expected


@pytest.mark.parametrize("asked, expected", [
    ("float32", "float32"), ("bfloat16", "mixed_bfloat16"), ("float16", "mixed_float16"),
    ("mixed_bfloat16", "mixed_bfloat16"),
])
def test_explicit_precision_is_honoured_on_any_hardware(asked, expected):
    assert resolve_precision(asked, cpu_flags=SKYLAKE, gpus=()) == expected


def test_unknown_precision_is_one_clear_error():
    with pytest.raises(PrecisionError, match="'auto' or one of"):
        resolve_precision("int8")
    with pytest.raises(PrecisionError, match="got 'half'"):
        TrainingConfig(precision="half")


def test_mixed_precision_flag_still_means_float16():
    assert TrainingConfig(mixed_precision=True).dtype_policy == "mixed_float16"
    assert TrainingConfig(precision="float32").dtype_policy == "float32"


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n\nprocessor\t: 1\n")
    assert precision_module._cpu_flags(cpuinfo) == {"fpu", "avx512f", "avx512_bf16"}
    assert precision_module._cpu_flags(tmp_path / "missing") == set()


def test_auto_on_this_machine_matches_its_flags():
    flags, gpus = precision_module.hardware()
    expected = ("mixed_bfloat16" if not gpus and {"avx512_bf16", "amx_bf16"} & flags
                else resolve_precision("auto", cpu_flags=flags, gpus=gpus))
    assert TrainingConfig().dtype_policy == expected


def test_a_cpu_without_bf16_says_why_auto_is_float32_and_what_is_faster():
    line = precision_line("auto", "float32", cpu_flags=SKYLAKE, gpus=(), environ={})
    assert line.startswith("precision: auto -> Keras dtype policy float32 (")
    assert "no avx512_bf16 / amx_bf16" in line and "TF_ENABLE_ONEDNN_OPTS=1" in line
    opted_in = precision_line("auto", "float32", cpu_flags=SKYLAKE, gpus=(),
                              environ={"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert "no avx512_bf16" in opted_in and "TF_ENABLE_ONEDNN_OPTS" not in opted_in
    assert "about 2x" in opted_in and "about 3x" in line


def test_commands_turn_onednn_on_unless_the_user_chose(monkeypatch):
    from keras_latent.flags import quiet_startup

    monkeypatch.setenv("KERAS_LATENT_VERBOSE", "1")  # nothing to mute; TensorFlow is loaded
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    quiet_startup()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    quiet_startup()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


def test_bf16_asked_for_on_a_cpu_without_it_is_called_slow():
    line = precision_line("bfloat16", "mixed_bfloat16", cpu_flags=SKYLAKE, gpus=(), environ={})
    assert "emulated" in line and "--precision float32" in line


@pytest.mark.parametrize("asked, policy, flags, gpus, extra", [
    ("auto", "mixed_bfloat16", ZEN4, (), " (this CPU has avx512_bf16)"),
    ("auto", "mixed_bfloat16", SKYLAKE, ((9, 0),), ""),  # the GPU decides
    ("float32", "float32", SKYLAKE, (), ""),  # asked for: nothing to explain
    ("auto", "float32", set(), (), ""),  # flags unknown (not Linux): no guess
])
def test_the_precision_line_adds_only_what_the_hardware_explains(asked, policy, flags, gpus, extra):
    line = precision_line(asked, policy, cpu_flags=flags, gpus=gpus, environ={})
    assert line == f"precision: {asked} -> Keras dtype policy {policy}{extra}"

TINY_FAST = {"kind": "conv", "channels": [8, 16], "kernel_sizes": 3, "strides": 2,
             "pooling": "max", "pool_first": True, "pool_padding": "valid", "convs_per_stage": 2,
             "batch_norm": True, "activation": "gelu", "global_pool": "max", "stem": "whiten",
             "bn_momentum": 0.6, "bn_bias_scale": 8.0, "conv_init": "dirac"}


def _train(splits, precision):
    from keras_latent import paradigms

    config = TrainingConfig(epochs=2, batch_size=64, learning_rate=2e-3, seed=0, verbose=0,
                            precision=precision)
    return paradigms.train_classifier(splits, architecture=TINY_FAST, latent_dim=16,
                                      augment="shift_flip", config=config)


@pytest.fixture(scope="module")
def cifar_small(data_dir):
    from keras_latent.data import load_dataset

    return load_dataset("cifar10", data_dir=data_dir, seed=0).limit(640, seed=0)


def test_bfloat16_and_float32_give_finite_close_losses(cifar_small):
    losses = {p: _train(cifar_small, p).history["loss"] for p in ("float32", "bfloat16")}
    for values in losses.values():
        assert np.all(np.isfinite(values)) and values[-1] < values[0]  # both learn
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.05)


def test_bfloat16_model_saves_as_float32_and_reloads_the_same(cifar_small, tmp_path):
    from keras_latent.models import load_model, save_model_atomic

    model = _train(cifar_small, "bfloat16").model
    assert model.encoder.get_layer("stage1_conv1").dtype_policy.name == "mixed_bfloat16"
    save_model_atomic(model, tmp_path / "saved" / "classifier.keras")
    reloaded = load_model(tmp_path / "saved" / "classifier.keras")
    assert {layer.dtype_policy.name for layer in reloaded.encoder.layers} == {"float32"}
    x = cifar_small.test.images[:32].astype("float32") / 255.0
    # bfloat16 keeps ~3 significant digits: the float32 twin predicts the same classes.
    bf16, fp32 = model.predict(x, verbose=0), reloaded.predict(x, verbose=0)
    np.testing.assert_allclose(fp32, bf16, atol=0.05 * np.abs(bf16).max())
    assert np.mean(bf16.argmax(1) == fp32.argmax(1)) >= 0.9
    assert_reloads_in_fresh_process(reloaded, x, tmp_path / "fresh", atol=1e-5)
