"""Architecture configs: every knob an encoder / decoder config may carry, its default, its
checks, and the stage plan both builders follow.

One config dict describes an encoder AND the decoder that mirrors it, so both builders read it
through `resolve_config()` / `conv_plan()` here: they can never disagree about stage sizes.
The named configs built from these knobs are in `presets.py`; plain Python, no Keras.
"""

import math


class ModelConfigError(ValueError):
    """An architecture config that cannot build; the message names the argument and the fix."""


# Every knob a config may carry, with its default. Both builders accept the same keys, so an
# encoder-only knob (e.g. `global_pool`) is legal in a decoder call and simply not used there.
MLP_DEFAULTS = {
    "widths": [256, 128],
    "activation": "relu",
    "batch_norm": False,
    "dropout": 0.0,
}
CONV_DEFAULTS = {
    "channels": [32, 64, 128],
    "kernel_sizes": 3,
    "strides": 2,
    "pooling": None,  # None: strided convs; "max"/"avg": stride-1 convs, then pool by `strides`
    "batch_norm": False,
    "activation": "relu",
    "residual": False,  # each stage becomes a two-conv basic block with a projected shortcut
    "convs_per_stage": 1,  # plain (non-residual) stages only: VGG-style repeats
    "global_pool": False,  # False: Flatten; True/"avg"/"max": global pooling before the latent
    "dense_widths": [],  # hidden Dense layers between the conv trunk and the latent
    "dropout": 0.0,  # after the conv trunk and after each hidden Dense
    # The fast-CIFAR knobs (airbench's shape; see models/layers.py):
    "stem": None,  # "whiten": a frozen 2x2 patch-whitening conv (fit to the data) + activation
    "pool_first": False,  # pool right after a stage's first conv, so its other convs run smaller
    "pool_padding": "same",  # "valid": floor the pooled size (31 -> 15 -> 7 -> 3), fewer FLOPs
    "bn_momentum": 0.99,  # Keras' convention; short runs want less (0.9 ~ PyTorch's default)
    "bn_epsilon": 1e-3,  # Keras' default; airbench's 1e-12 keeps BN exactly scale-invariant
    "bn_bias_scale": None,  # e.g. 8: BN without affine + a ScaledBias learning 64x faster
    "conv_init": "glorot_uniform",  # or "dirac": identity on the first min(in, out) filters
}
KINDS = {"mlp": MLP_DEFAULTS, "conv": CONV_DEFAULTS}


def check_positive_int(value, name, example):
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ModelConfigError(f"{name} must be a positive integer, got {value!r}; pass e.g. {name}={example}")
    return value


def _per_stage(value, name, num_stages):
    """An int broadcasts to every stage; a list must give exactly one entry per stage."""
    if isinstance(value, int) and not isinstance(value, bool):
        values = [value] * num_stages
    else:
        try:
            values = list(value)
        except TypeError:
            raise ModelConfigError(f"{name} must be an int or a list of ints, got {value!r}") from None
        if len(values) != num_stages:
            raise ModelConfigError(
                f"{name} has {len(values)} entries but channels has {num_stages} stages; "
                f"give one {name[:-1]} per stage or a single int that applies to all"
            )
    for v in values:
        check_positive_int(v, name, 3 if name == "kernel_sizes" else 2)
    return values


def _check_dropout(rate):
    if not (isinstance(rate, (int, float)) and 0.0 <= rate < 1.0):
        raise ModelConfigError(f"dropout must be a float in [0, 1), got {rate!r}; pass e.g. dropout=0.2")


def _check_widths(widths, name, allow_empty):
    try:
        widths = list(widths)
    except TypeError:
        raise ModelConfigError(f"{name} must be a list of positive ints, got {widths!r}") from None
    if not widths and not allow_empty:
        raise ModelConfigError(f"{name} must be a non-empty list of positive ints (one per stage), got []; e.g. {name}=[32, 64, 128]")
    for w in widths:
        check_positive_int(w, name, "[32, 64, 128]")
    return widths


def resolve_config(kind, config):
    """Validate a builder config and return it complete (defaults filled in, lists normalised)."""
    if kind not in KINDS:
        raise ModelConfigError(f"kind must be one of {sorted(KINDS)}, got {kind!r}")
    defaults = KINDS[kind]
    unknown = sorted(set(config) - set(defaults))
    if unknown:
        raise ModelConfigError(
            f"unknown config key(s) {unknown} for kind={kind!r}; known keys: {sorted(defaults)}"
        )
    cfg = {**defaults, **config}
    _check_dropout(cfg["dropout"])
    if kind == "mlp":
        cfg["widths"] = _check_widths(cfg["widths"], "widths", allow_empty=True)
        return cfg
    cfg["channels"] = _check_widths(cfg["channels"], "channels", allow_empty=False)
    n = len(cfg["channels"])
    cfg["kernel_sizes"] = _per_stage(cfg["kernel_sizes"], "kernel_sizes", n)
    cfg["strides"] = _per_stage(cfg["strides"], "strides", n)
    cfg["dense_widths"] = _check_widths(cfg["dense_widths"], "dense_widths", allow_empty=True)
    check_positive_int(cfg["convs_per_stage"], "convs_per_stage", 2)
    if cfg["pooling"] not in (None, "max", "avg"):
        raise ModelConfigError(f"pooling must be None, 'max' or 'avg', got {cfg['pooling']!r}")
    if cfg["stem"] not in (None, "whiten"):
        raise ModelConfigError(f"stem must be None or 'whiten', got {cfg['stem']!r}")
    if cfg["pool_padding"] not in ("same", "valid"):
        raise ModelConfigError(f"pool_padding must be 'same' or 'valid', got {cfg['pool_padding']!r}")
    if not (isinstance(cfg["bn_momentum"], (int, float)) and 0.0 <= cfg["bn_momentum"] < 1.0):
        raise ModelConfigError(f"bn_momentum must be a float in [0, 1), got {cfg['bn_momentum']!r}; pass e.g. bn_momentum=0.9")
    if not (isinstance(cfg["bn_epsilon"], (int, float)) and cfg["bn_epsilon"] > 0):
        raise ModelConfigError(f"bn_epsilon must be a positive float, got {cfg['bn_epsilon']!r}; pass e.g. bn_epsilon=1e-5")
    if cfg["bn_bias_scale"] is not None and not (isinstance(cfg["bn_bias_scale"], (int, float)) and cfg["bn_bias_scale"] > 0):
        raise ModelConfigError(f"bn_bias_scale must be None or a positive number, got {cfg['bn_bias_scale']!r}; pass e.g. bn_bias_scale=8")
    if cfg["conv_init"] not in ("glorot_uniform", "he_uniform", "dirac"):
        raise ModelConfigError(f"conv_init must be 'glorot_uniform', 'he_uniform' or 'dirac', got {cfg['conv_init']!r}")
    if cfg["global_pool"] not in (False, True, "avg", "max"):
        raise ModelConfigError(f"global_pool must be False, True, 'avg' or 'max', got {cfg['global_pool']!r}")
    return cfg


def conv_plan(input_shape, cfg):
    """Spatial size (H, W) before each stage and after the last, as the padding gives them.

    The decoder walks this list backwards and crops (or pads) after each upsampling, so odd
    sizes (28 -> 14 -> 7 -> 4) come back exactly (4 -> 8 -> 7 -> 14 -> 28). A whitening stem
    (a valid 2x2 conv) makes the first entry one pixel smaller than the image.
    """
    if len(input_shape) != 3:
        raise ModelConfigError(
            f"kind='conv' needs an image shape (height, width, channels), got {tuple(input_shape)}; "
            "add a channel axis, e.g. (28, 28, 1)"
        )
    for dim in input_shape:
        check_positive_int(dim, "input_shape entries", 28)
    shrink = 1 if cfg.get("stem") == "whiten" else 0
    sizes = [(input_shape[0] - shrink, input_shape[1] - shrink)]
    floor = cfg.get("pool_padding") == "valid" and cfg.get("pooling") is not None
    for stage, stride in enumerate(cfg["strides"]):
        h, w = sizes[-1]
        if stride > 1 and min(h, w) < stride:
            walk = " -> ".join(f"{a}x{b}" for a, b in sizes)
            raise ModelConfigError(
                f"input {input_shape[0]}x{input_shape[1]} is too small for {len(cfg['strides'])} "
                f"downsampling stages: spatial size would reach 0 at stage {stage + 1} "
                f"({walk} -> ?, stride {stride}); use fewer channels entries or strides=1 "
                "for the later stages"
            )
        rounding = math.floor if floor else math.ceil
        sizes.append((rounding(h / stride), rounding(w / stride)))
    return sizes
