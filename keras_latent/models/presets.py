"""Named architecture configs. A preset is plain data: `build_encoder(shape, d, **preset)` and
`build_decoder(shape, d, **preset)` turn the same dict into a matching pair."""

import copy

from keras_latent.models.config import ModelConfigError, check_positive_int, resolve_config

PRESETS = {
    # The MNIST reference MLP: 784 -> 256 -> 128 -> latent. Batch norm is on because without it
    # an L1-trained MLP autoencoder was seen to collapse to the blank image (MNIST's per-pixel
    # median): MAE 0.13, probe 11 %.
    "mnist_mlp": {
        "kind": "mlp",
        "widths": [256, 128],
        "activation": "relu",
        "batch_norm": True,
    },
    # Three stride-2 stages c -> 2c -> 4c (28 -> 14 -> 7 -> 4); `base_channels=c` rescales.
    "mnist_conv": {
        "kind": "conv",
        "channels": [16, 32, 64],
        "kernel_sizes": 3,
        "strides": 2,
        "batch_norm": True,
        "activation": "relu",
    },
    # The classic small CIFAR net: conv-conv-pool blocks 32-64-128, Flatten, Dense.
    "cifar_conv": {
        "kind": "conv",
        "channels": [32, 64, 128],
        "kernel_sizes": 3,
        "strides": 2,
        "pooling": "max",
        "convs_per_stage": 2,
        "batch_norm": True,
        "activation": "relu",
        "dropout": 0.2,
    },
    # VGG-style 64-128-256-512 (two BN convs per stage, max-pool), global average pool:
    # compact (~4.7M weights) and the usual shape of nets that reach >= 92 % on CIFAR-10 with
    # flip/crop augmentation. That figure is not measured by this project's tests.
    "cifar_strong": {
        "kind": "conv",
        "channels": [64, 128, 256, 512],
        "kernel_sizes": 3,
        "strides": 2,
        "pooling": "max",
        "convs_per_stage": 2,
        "batch_norm": True,
        "activation": "relu",
        "global_pool": "avg",
        "dropout": 0.3,
    },
    # airbench94's network (Jordan 2024) with the 128-d code before the head: a frozen 2x2
    # patch-whitening stem fit to the training images, GELU, then three blocks of
    # conv -> max-pool -> BN -> GELU -> conv -> BN -> GELU at 64/256/256 channels on
    # 31 -> 15 -> 7 -> 3 pixels, global max pool. Identity-initialised convs, BN without affine
    # but with biases learning 64x faster, BN momentum 0.4 (PyTorch's 0.6) and epsilon 1e-12 (weight
    # decay shrinks the conv weights, and a larger epsilon would then damp them): built to be trained
    # in ~10 epochs with train_classifier's FAST_CLASSIFIER_CONFIG.
    "cifar_fast": {
        "kind": "conv",
        "channels": [64, 256, 256],
        "kernel_sizes": 3,
        "strides": 2,
        "pooling": "max",
        "pool_first": True,
        "pool_padding": "valid",
        "convs_per_stage": 2,
        "batch_norm": True,
        "activation": "gelu",
        "global_pool": "max",
        "stem": "whiten",
        "bn_momentum": 0.4,
        "bn_epsilon": 1e-12,
        "bn_bias_scale": 8.0,
        "conv_init": "dirac",
    },
    # Fixed for throughput benchmarks: Conv2D(3x3, stride 2, same) -> BN -> ReLU at 32, 64, 128,
    # Flatten, Dense(latent). Decoder: Dense(4*4*128, relu) -> Reshape -> Conv2DTranspose(3x3,
    # stride 2) 64, 32 (BN + ReLU) and the image channels (sigmoid).
    "benchmark": {
        "kind": "conv",
        "channels": [32, 64, 128],
        "kernel_sizes": 3,
        "strides": 2,
        "batch_norm": True,
        "activation": "relu",
    },
}


def get_preset(name, **overrides):
    """A fresh copy of preset `name` with `overrides` applied (validated now, not at build time).

    `base_channels=c` rescales a conv preset's channel pyramid so its first stage has `c`
    channels (mnist_conv: [c, 2c, 4c]).

    Example:
        >>> cfg = get_preset("mnist_conv", base_channels=8)   # channels [8, 16, 32]
    """
    if name not in PRESETS:
        raise ModelConfigError(f"unknown preset {name!r}; available presets: {sorted(PRESETS)}")
    config = copy.deepcopy(PRESETS[name])
    base = overrides.pop("base_channels", None)
    config.update(copy.deepcopy(overrides))
    if base is not None:
        if config.get("kind") != "conv":
            raise ModelConfigError(f"base_channels applies to conv presets only; {name!r} is kind={config.get('kind')!r} (use widths=[...])")
        check_positive_int(base, "base_channels", 16)
        first = config["channels"][0]
        config["channels"] = [base * c // first for c in config["channels"]]
    kind = config.pop("kind", "conv")
    resolve_config(kind, config)
    return {"kind": kind, **config}
