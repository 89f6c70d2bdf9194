"""Mean, 95 % interval and Welch's test over seeds, on inputs whose answers are known."""

import math

import pytest

from keras_latent.evaluation import seeds


def test_mean_and_student_t_interval_of_known_values():
    # 1, 2, 3: mean 2, sample std 1; t(0.975, 2 dof) = 4.303 (any t table)
    summary = seeds.summarise([1.0, 2.0, 3.0])
    assert summary.mean == 2.0 and summary.count == 3
    assert summary.half_width == pytest.approx(4.303 / math.sqrt(3), abs=1e-3)
    # 10 values 0..9: std 3.0277, t(0.975, 9) = 2.262
    assert seeds.summarise(range(10)).half_width == pytest.approx(2.262 * 3.0277 / math.sqrt(10),
                                                                  abs=1e-3)
    assert seeds.summarise([0.5]) == (0.5, None, 1)
    assert seeds.summarise([None, None]) is None
    assert seeds.summarise([0.5, None, 0.7]).count == 2  # a run without the figure is left out


def test_welch_test_on_known_samples():
    first, second = [1.0, 2.0, 3.0], [4.0, 6.0, 8.0]
    # by hand: t = (2 - 6) / sqrt(1/3 + 4/3) = -3.098; Welch df = 2.94; two-sided p = 0.0546
    assert seeds.welch_p_value(first, second) == pytest.approx(0.0546, abs=5e-4)
    assert not seeds.differs(first, second)  # just above 0.05
    assert seeds.differs(first, [7.0, 8.0, 9.0])
    assert seeds.welch_p_value(first, [5.0]) is None  # one seed has no spread to judge by
    assert seeds.welch_p_value([1.0, 1.0], [1.0, 1.0]) is None
    assert seeds.differs([1.0, 1.0], [2.0, 2.0])  # no spread at all: any difference is real


def test_non_finite_values_are_refused():
    with pytest.raises(ValueError, match="finite"):
        seeds.summarise([0.5, float("nan")])
