"""Mean, 95 % interval and significance over seeds: is a difference between methods noise?

The interval is Student's t (n - 1 degrees of freedom) around the mean of n seeds; two methods
differ beyond the seed spread when Welch's t-test (unequal variances) gives p < ``ALPHA``.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "SeedSummary", "summarise", "welch_p_value", "differs"]

#: Significance level of ``differs`` (and 1 - the interval's confidence).
ALPHA = 0.05


class SeedSummary(NamedTuple):
    """A figure over seeds: its mean, the half-width of its 95 % interval (None for one seed)
    and the number of seeds."""

    mean: float
    half_width: float | None
    count: int


def _values(values) -> np.ndarray:
    values = np.asarray([v for v in values if v is not None], dtype="float64")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"seed values must be finite numbers, got {values.tolist()}.")
    return values


def summarise(values, confidence: float = 1.0 - ALPHA) -> SeedSummary | None:
    """Mean and Student-t interval of ``values`` (Nones left out); None when none is left."""
    values = _values(values)
    if len(values) == 0:
        return None
    if len(values) == 1:
        return SeedSummary(float(values[0]), None, 1)
    sem = values.std(ddof=1) / math.sqrt(len(values))
    t = stats.t.ppf(0.5 + confidence / 2.0, df=len(values) - 1)
    return SeedSummary(float(values.mean()), float(t * sem), len(values))


def welch_p_value(first, second) -> float | None:
    """Two-sided p-value of Welch's t-test on two methods' seed values; None when either has
    fewer than two seeds. When neither has any spread: 0.0 if they differ (any difference
    exceeds a spread of zero), else None."""
    first, second = _values(first), _values(second)
    if len(first) < 2 or len(second) < 2:
        return None
    if np.ptp(first) == 0 and np.ptp(second) == 0:
        return None if first[0] == second[0] else 0.0
    with warnings.catch_warnings():  # scipy warns of precision loss for a sample of equal values
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(first, second, equal_var=False).pvalue)


def differs(first, second, alpha: float = ALPHA) -> bool:
    """Whether two methods' seed values differ beyond the seed spread (Welch, p < ``alpha``)."""
    p_value = welch_p_value(first, second)
    return p_value is not None and p_value < alpha
