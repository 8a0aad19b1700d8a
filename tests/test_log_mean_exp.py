"""ops/log_mean_exp.py: the IWAE bound's log-mean-exp and its softmax gradient.

The forward agrees with scipy.special.logsumexp - log k and the cache with
scipy.special.softmax (float64, 1e-12 relative to the value's size), also
for log-weights of -1000 nats and beyond, where the literal formula
underflows; the backward is checked against central differences of the
forward (float64, gradcheck's h = 1e-5, relative error below its TOL = 1e-6).
"""

import math

import numpy as np
import pytest
from scipy.special import logsumexp, softmax

from numpyvae.gradcheck import TOL, numerical_gradient_array, relative_error
from numpyvae.ops.log_mean_exp import log_mean_exp_backward, log_mean_exp_forward


@pytest.mark.parametrize("k, n, scale, shift", [(1, 4, 1.0, 0.0), (5, 20, 10.0, -100.0),
                                                (50, 3, 30.0, -1000.0), (3, 2, 1.0, 700.0)])
def test_log_mean_exp_agrees_with_scipy(k, n, scale, shift):
    a = np.random.default_rng(k).standard_normal((k, n)) * scale + shift
    value, weights = log_mean_exp_forward(a)
    expected = logsumexp(a, axis=0) - math.log(k)
    assert value.shape == (n,) and weights.shape == (k, n)
    assert np.all(np.isfinite(value))
    assert np.allclose(value, expected, rtol=1e-12, atol=1e-12 * (abs(shift) + scale))
    assert np.allclose(weights, softmax(a, axis=0), rtol=1e-12, atol=1e-15)
    assert np.allclose(weights.sum(axis=0), 1.0, rtol=1e-12)


def test_log_mean_exp_keeps_float32():
    a = (np.random.default_rng(0).standard_normal((5, 20)) * 10 - 100).astype(np.float32)
    value, weights = log_mean_exp_forward(a)
    assert value.dtype == weights.dtype == np.float32
    assert np.allclose(value, logsumexp(a.astype(np.float64), axis=0) - math.log(5), atol=1e-4)


@pytest.mark.parametrize("k", [1, 2, 7])
def test_log_mean_exp_backward_matches_central_differences(k):
    rng = np.random.default_rng(10 + k)
    a = rng.standard_normal((k, 3)) * 2 - 5
    upstream = rng.standard_normal(3)               # dL/dvalue, so the loss is upstream . value
    analytic = log_mean_exp_backward(upstream, log_mean_exp_forward(a)[1])
    numeric = numerical_gradient_array(lambda: log_mean_exp_forward(a)[0], a, upstream)
    assert relative_error(analytic, numeric) < TOL
