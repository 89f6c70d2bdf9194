"""Which Keras dtype policy a run trains under, chosen from the hardware when asked for "auto".

``resolve_precision`` is a pure function of the request, the CPU's instruction-set flags and
the GPUs, so every case is testable without the hardware; ``hardware()`` reads the real ones.
bfloat16 trains the recipes' conv nets faster (by the factor docs/PERFORMANCE.md measured, not
twice) on CPUs with native bf16 dot products (avx512_bf16 / amx_bf16), but on a CPU without
them the backend emulates it and is many times slower (TensorFlow issue 42422), so "auto" never
picks it there.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

#: What a user may ask for -> the Keras policy it means (explicit requests are honoured as is).
PRECISIONS = {
    "float32": "float32",
    "bfloat16": "mixed_bfloat16",
    "float16": "mixed_float16",
    "mixed_bfloat16": "mixed_bfloat16",
    "mixed_float16": "mixed_float16",
}
CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


class PrecisionError(ValueError):
    """An unknown precision name; the message lists the known ones."""


def resolve_precision(precision="auto", *, cpu_flags=(), gpus=()) -> str:
    """The Keras dtype policy name for ``precision`` on this hardware.

    Args:
        precision: "auto", "float32", "bfloat16" or "float16" (Keras policy names work too).
        cpu_flags: the CPU's instruction-set flags (as in /proc/cpuinfo).
        gpus: one compute capability ``(major, minor)`` per visible CUDA GPU.

    "auto" gives mixed_bfloat16 on GPUs that all have compute capability >= 8.0 (Ampere on),
    mixed_float16 on older GPUs, mixed_bfloat16 on a CPU with native bf16 instructions and
    float32 everywhere else.
    """
    if precision != "auto":
        if precision not in PRECISIONS:
            raise PrecisionError(
                f"precision must be 'auto' or one of {sorted(PRECISIONS)}, got {precision!r}"
            )
        return PRECISIONS[precision]
    if gpus:
        return "mixed_bfloat16" if all(tuple(cc) >= (8, 0) for cc in gpus) else "mixed_float16"
    if CPU_BF16_FLAGS & set(cpu_flags):
        return "mixed_bfloat16"
    return "float32"


def precision_line(precision, policy, *, cpu_flags=None, gpus=None, environ=None) -> str:
    """The line a run prints about its precision: the policy and, where it matters, why.

    A user whose CPU has no bf16 instructions otherwise sees a run take two to three times the
    times docs/ measured on a bf16 CPU (the main job on 2 cores, TensorFlow: 40 min 48 s in
    float32 with oneDNN, 55 min 0 s without, about 21.5 min in bfloat16) with no hint of the
    cause, or of the ~1.35x that oneDNN gives there (the commands turn it on).
    ``cpu_flags`` / ``gpus`` / ``environ`` default to this machine's (testable without it).
    """
    if cpu_flags is None:
        cpu_flags = hardware()[0]
    if gpus is None:
        gpus = hardware()[1]
    environ = os.environ if environ is None else environ
    line = f"precision: {precision} -> Keras dtype policy {policy}"
    if gpus or not cpu_flags:  # a GPU decides, or flags unknown (not Linux): nothing to add
        return line
    native = sorted(CPU_BF16_FLAGS & set(cpu_flags))
    if native:
        return f"{line} (this CPU has {', '.join(native)})"
    if policy == "mixed_bfloat16":
        return (f"{line} (this CPU has no avx512_bf16 / amx_bf16: bf16 is emulated, many times "
                "slower than --precision float32)")
    if precision != "auto":
        return line
    if environ.get("TF_ENABLE_ONEDNN_OPTS") == "1":  # the commands' default since oneDNN won
        return (f"{line} (this CPU has no avx512_bf16 / amx_bf16: expect about 2x the run "
                "times docs/ gives for a bf16 CPU)")
    return (f"{line} (this CPU has no avx512_bf16 / amx_bf16: expect about 3x the run times "
            "docs/ gives for a bf16 CPU; TF_ENABLE_ONEDNN_OPTS=1 trains ~1.35x faster on such "
            "a CPU (README, Precision))")


@functools.lru_cache(maxsize=None)
def hardware() -> tuple[frozenset, tuple]:
    """``(cpu_flags, gpu compute capabilities)`` of this machine, read once per process."""
    return frozenset(_cpu_flags()), tuple(_gpu_capabilities())


def auto_policy(precision="auto") -> str:
    """``resolve_precision`` on this machine's hardware."""
    if precision != "auto":
        return resolve_precision(precision)
    cpu_flags, gpus = hardware()
    return resolve_precision(precision, cpu_flags=cpu_flags, gpus=gpus)


def _cpu_flags(cpuinfo="/proc/cpuinfo") -> set:
    """The flags line of Linux's /proc/cpuinfo; empty elsewhere (so "auto" stays float32)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _gpu_capabilities() -> list:
    from keras_latent import backend

    return [capability for _, capability in backend.gpus()]
