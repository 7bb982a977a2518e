import math

import numpy as np
import pytest

from handpose.filters import OneEuroFilter


def test_first_value_passes_and_constant_stays():
    f = OneEuroFilter(min_cutoff=1.0, beta=0.5)
    x = np.array([[3.0, 4.0]])
    assert f(x, 0.0).tolist() == [[3.0, 4.0]]
    for i in range(1, 10):
        assert np.allclose(f(x, i / 30), x)


def test_one_step_is_a_low_pass_with_known_alpha():
    # beta 0: a plain exponential smoother with alpha = 1 / (1 + 1 / (2 pi fc dt))
    f = OneEuroFilter(min_cutoff=1.0, beta=0.0)
    f(np.zeros(1), 0.0)
    dt = 1 / 30
    alpha = 1 / (1 + 1 / (2 * math.pi * 1.0 * dt))
    assert f(np.ones(1), dt)[0] == pytest.approx(alpha)


def test_noise_reduced_and_speed_followed():
    rng = np.random.default_rng(0)
    t = np.arange(300) / 30
    noisy = 100 + rng.normal(0, 2, size=t.size)
    f = OneEuroFilter(min_cutoff=0.5, beta=0.0)
    out = np.array([f(np.array([v]), s)[0] for v, s in zip(noisy, t, strict=True)])
    assert out[60:].std() < 0.4 * noisy[60:].std()
    # a moving point: a higher beta lags less behind a ramp of 300 px/s
    ramp = 300 * t
    lag = {}
    for beta in (0.0, 0.05):
        f = OneEuroFilter(min_cutoff=0.5, beta=beta)
        out = np.array([f(np.array([v]), s)[0] for v, s in zip(ramp, t, strict=True)])
        lag[beta] = float(np.mean(ramp[100:] - out[100:]))
    assert lag[0.05] < 0.5 * lag[0.0]


def test_shape_change_resets():
    f = OneEuroFilter()
    f(np.zeros((1, 21, 2)), 0.0)
    assert f(np.ones((2, 21, 2)), 0.1).tolist() == np.ones((2, 21, 2)).tolist()
