"""Dimensional-collapse diagnostics: does a code use its dimensions, and how do its positive
pairs sit on the sphere? NumPy arrays in, floats out, as in ``metrics``.

A code that spans 3 of its 128 dimensions can still score well on accuracy; these numbers show
it. References: Roy & Vetterli, "The effective rank" (EUSIPCO 2007); Jing et al.,
"Understanding dimensional collapse in contrastive self-supervised learning" (ICLR 2022);
Wang & Isola, "Understanding contrastive representation learning through alignment and
uniformity on the hypersphere" (ICML 2020).
"""

from __future__ import annotations

import numpy as np

from keras_latent.evaluation.metrics import l2_normalised

__all__ = ["singular_values", "effective_rank", "variance_share", "normalised_std",
           "alignment", "uniformity", "collapse_scores", "TOP_COMPONENTS"]

#: The leading components whose share of the variance ``collapse_scores`` reports.
TOP_COMPONENTS = (1, 10)


def _codes(z, name="codes") -> np.ndarray:
    z = np.asarray(z, dtype="float64")
    if z.ndim != 2 or len(z) < 2:
        raise ValueError(f"{name} must be 2-D (N >= 2, latent_dim), got shape {z.shape}.")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{name} contain NaN or inf; the encoder's weights have diverged.")
    return z


def singular_values(z) -> np.ndarray:
    """Singular values of the centred codes, largest first (their squares are the variances
    along the principal components, times N)."""
    z = _codes(z)
    return np.linalg.svd(z - z.mean(axis=0), compute_uv=False)


def effective_rank(z=None, *, spectrum=None) -> float:
    """``exp`` of the entropy of the singular values normalised to sum to 1 (Roy & Vetterli):
    from 1 (one direction) to ``latent_dim`` (all directions used equally)."""
    spectrum = singular_values(z) if spectrum is None else np.asarray(spectrum, "float64")
    total = spectrum.sum()
    if total <= 0:
        return 1.0  # every code the same: a single point, fully collapsed
    p = spectrum[spectrum > 0] / total
    return float(np.exp(-np.sum(p * np.log(p))))


def variance_share(z=None, components: int = 10, *, spectrum=None) -> float:
    """Fraction of the codes' variance along their ``components`` leading principal directions."""
    spectrum = singular_values(z) if spectrum is None else np.asarray(spectrum, "float64")
    variances = spectrum ** 2
    total = variances.sum()
    return 1.0 if total <= 0 else float(variances[:int(components)].sum() / total)


def normalised_std(z) -> np.ndarray:
    """Standard deviation of each dimension of the L2-normalised codes: about ``1/sqrt(d)``
    when the code spreads over the sphere, near 0 in the dimensions a collapsed code leaves."""
    return l2_normalised(_codes(z)).std(axis=0)


def alignment(z1, z2, alpha: float = 2.0) -> float:
    """Mean ``||f(x) - f(x+)||^alpha`` over positive pairs of normalised codes (lower: the two
    views of an image land closer)."""
    z1, z2 = _codes(z1, "first views"), _codes(z2, "second views")
    if z1.shape != z2.shape:
        raise ValueError(f"the two views' codes differ in shape: {z1.shape} and {z2.shape}.")
    distance = np.linalg.norm(l2_normalised(z1) - l2_normalised(z2), axis=1)
    return float(np.mean(distance ** alpha))


def uniformity(z, t: float = 2.0) -> float:
    """``log E exp(-t ||f(x) - f(y)||^2)`` over distinct pairs of normalised codes (lower: the
    codes spread more evenly over the sphere; -4 is the floor for t=2 in high dimension)."""
    z = l2_normalised(_codes(z))
    squared = np.maximum(2.0 - 2.0 * (z @ z.T), 0.0)  # ||a - b||^2 of unit vectors
    pairs = squared[np.triu_indices(len(z), k=1)]
    # log-mean-exp, shifted by the largest term so it cannot underflow to log(0)
    exponents = -float(t) * pairs
    top = exponents.max()
    return float(top + np.log(np.mean(np.exp(exponents - top))))


def collapse_scores(z) -> dict:
    """The collapse figures of one set of codes, as ``metrics.json`` stores them."""
    z = _codes(z)
    spectrum = singular_values(z)
    stds = normalised_std(z)
    return {
        "effective_rank": effective_rank(spectrum=spectrum),
        "variance_share_top": {str(n): variance_share(components=n, spectrum=spectrum)
                               for n in TOP_COMPONENTS},
        "normalised_std_mean": float(stds.mean()),
        "normalised_std_min": float(stds.min()),
        "normalised_std_uniform": float(1.0 / np.sqrt(z.shape[1])),
        "singular_values": [float(value) for value in spectrum],
    }
