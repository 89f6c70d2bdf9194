"""Collapse diagnostics: each against a NumPy reference, and a rank-3 code told from a healthy
one by the numbers."""

import numpy as np
import pytest

from keras_latent.evaluation import collapse


def _healthy_and_collapsed(n=600, dim=128, rank=3, seed=0):
    rng = np.random.default_rng(seed)
    healthy = rng.normal(size=(n, dim))
    collapsed = rng.normal(size=(n, rank)) @ rng.normal(size=(rank, dim))  # rank 3 in 128 dims
    return healthy, collapsed


def _unit(z):
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_spectrum_effective_rank_and_variance_share_match_numpy():
    z = np.random.default_rng(1).normal(size=(200, 12)) * np.arange(1, 13)
    centred = z - z.mean(axis=0)
    eigen = np.sort(np.linalg.eigvalsh(centred.T @ centred))[::-1]  # = singular values squared
    np.testing.assert_allclose(collapse.singular_values(z), np.sqrt(eigen), rtol=1e-8)
    p = np.sqrt(eigen) / np.sqrt(eigen).sum()
    assert collapse.effective_rank(z) == pytest.approx(np.exp(-(p * np.log(p)).sum()))
    assert collapse.variance_share(z, 3) == pytest.approx(eigen[:3].sum() / eigen.sum())
    assert collapse.effective_rank(np.ones((5, 4))) == 1.0  # a single point


def test_normalised_std_alignment_and_uniformity_match_numpy():
    rng = np.random.default_rng(2)
    z1 = rng.normal(size=(40, 6))
    z2 = z1 + 0.3 * rng.normal(size=z1.shape)
    np.testing.assert_allclose(collapse.normalised_std(z1), _unit(z1).std(axis=0))
    expected_alignment = np.mean([np.sum((a - b) ** 2) for a, b in zip(_unit(z1), _unit(z2))])
    assert collapse.alignment(z1, z2) == pytest.approx(expected_alignment)
    units = _unit(z1)
    pairs = [np.exp(-2 * np.sum((units[i] - units[j]) ** 2))
             for i in range(len(units)) for j in range(i + 1, len(units))]
    assert collapse.uniformity(z1) == pytest.approx(np.log(np.mean(pairs)))


def test_a_collapsed_code_is_told_from_a_healthy_one():
    healthy, collapsed = _healthy_and_collapsed()
    good, bad = collapse.collapse_scores(healthy), collapse.collapse_scores(collapsed)
    assert good["effective_rank"] > 80 and bad["effective_rank"] < 3.5
    assert bad["variance_share_top"]["10"] > 0.999 > 0.2 > good["variance_share_top"]["10"]
    assert len(good["singular_values"]) == 128
    assert good["normalised_std_uniform"] == pytest.approx(1 / np.sqrt(128))
    # codes spread over the sphere are more uniform (lower) than codes on a 3-d subspace
    assert collapse.uniformity(healthy[:300]) < collapse.uniformity(collapsed[:300]) - 1.0
    # a fully collapsed code (every image the same point plus noise in one axis) has no spread
    constant = np.ones((50, 128)) + 1e-3 * np.eye(50, 128)
    assert collapse.normalised_std(constant).mean() < 1e-3 < good["normalised_std_mean"]


def test_bad_codes_are_refused():
    with pytest.raises(ValueError, match="NaN or inf"):
        collapse.effective_rank(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="differ in shape"):
        collapse.alignment(np.ones((3, 2)), np.ones((4, 2)))
