"""Every line of the derivations that docs/ works through step by step, against central
differences (float64) or a closed form: the activations' derivatives
(docs/backprop_mlp.md, section 2), the learned-variance gradients
(docs/gaussian_decoder.md, section 2) and what the sleep phase minimises
(docs/objectives.md, section 5)."""

import numpy as np
import pytest
from scipy.special import expit

from numpyvae.gradcheck import numerical_gradient, relative_error
from numpyvae.ops.full_gaussian import kl_full_gaussians_forward
from numpyvae.ops.gaussian import gaussian_log_density_forward
from numpyvae.ops.layers import softplus

TOL = 1e-7      # central differences in float64, h = 1e-5


def elementwise_derivative(f, x):
    """f'(x) for an elementwise f, by central differences of sum(f(x))."""
    x = np.array(x, dtype=np.float64)
    return numerical_gradient(lambda: np.sum(f(x)), x)


X = np.linspace(-4, 4, 41)


def test_activation_derivatives_step_by_step():
    """Each expression of the three derivations equals f' numerically."""
    u, w = np.exp(X) - np.exp(-X), np.exp(X) + np.exp(-X)       # tanh = u / w, u' = w, w' = u
    tanh_steps = [(w * w - u * u) / w ** 2, 1 - (u / w) ** 2, 1 - np.tanh(X) ** 2]
    s = expit(X)
    sigmoid_steps = [np.exp(-X) / (1 + np.exp(-X)) ** 2,
                     (1 / (1 + np.exp(-X))) * (np.exp(-X) / (1 + np.exp(-X))), s * (1 - s)]
    softplus_steps = [np.exp(X) / (1 + np.exp(X)), 1 / (np.exp(-X) + 1), s,
                      1 - np.exp(-softplus(X))]            # sigma from softplus's output
    for f, steps in ((np.tanh, tanh_steps), (expit, sigmoid_steps), (softplus, softplus_steps)):
        numeric = elementwise_derivative(f, X)
        for i, step in enumerate(steps):
            assert relative_error(step, numeric) < TOL, (f.__name__, i)
    np.testing.assert_allclose(np.exp(-X) / (1 + np.exp(-X)), 1 - s, rtol=1e-12)
    # the slip s(1+s): 3/4 at x = 0 where sigma' = 1/4, and not 0 where sigma saturates
    assert X[20] == 0 and s[20] * (1 + s[20]) == pytest.approx(0.75)
    assert elementwise_derivative(expit, [0.0])[0] == pytest.approx(0.25, rel=1e-9)
    assert relative_error(s * (1 + s), elementwise_derivative(expit, X)) > 0.5


def test_learned_variance_gradients_step_by_step():
    rng = np.random.default_rng(0)
    x, m, s = rng.standard_normal(30), rng.standard_normal(30), rng.uniform(-1.5, 1.5, 30)
    v = np.exp(s)

    def logp():                                   # elementwise log N(x; m, e^s)
        return -0.5 * ((x - m) ** 2 * np.exp(-s) + s + np.log(2 * np.pi))
    dm = numerical_gradient(lambda: np.sum(logp()), m)
    ds = numerical_gradient(lambda: np.sum(logp()), s)
    for step in (-0.5 * np.exp(-s) * 2 * (x - m) * (-1), (x - m) * np.exp(-s), (x - m) / v):
        assert relative_error(step, dm) < TOL
    for step in (-0.5 * ((x - m) ** 2 * (-np.exp(-s)) + 1), 0.5 * ((x - m) ** 2 * np.exp(-s) - 1),
                 0.5 * ((x - m) ** 2 / v - 1)):
        assert relative_error(step, ds) < TOL
    # the same as a function of v: d/dv = (d/ds) / v
    var = v.copy()
    dv = numerical_gradient(lambda: np.sum(-0.5 * ((x - m) ** 2 / var + np.log(var))), var)
    assert relative_error(dv, 0.5 * ((x - m) ** 2 / v ** 2 - 1 / v)) < TOL
    assert relative_error(dv, ds / v) < TOL
    # the library's density is this one, summed over pixels
    assert gaussian_log_density_forward(x, m, s)[0] == pytest.approx(np.sum(logp()), rel=1e-13)
    # zero gradient, and a maximum, at v = (x - m)^2
    s_star = np.log((x - m) ** 2)
    grad = 0.5 * ((x - m) ** 2 * np.exp(-s_star) - 1)
    second = numerical_gradient(lambda: np.sum(0.5 * ((x - m) ** 2 * np.exp(-s_star) - 1)), s_star)
    assert np.max(np.abs(grad)) < 1e-12 and np.all(second < 0)


def linear_gaussian_model(rng, D=4, L=2, s2=0.5):
    """p(z) = N(0, I), p(x|z) = N(z W + b, s2 I): the true posterior is
    N((x - b) W^T S / s2, S) with S = (I + W W^T / s2)^-1, the marginal N(b, W^T W + s2 I)."""
    W, b = rng.standard_normal((L, D)), rng.standard_normal(D)
    S = np.linalg.inv(np.eye(L) + W @ W.T / s2)
    return W, b, s2, S


def test_the_sleep_phase_minimises_the_expected_kl_to_the_true_posterior():
    rng = np.random.default_rng(1)
    W, b, s2, S = linear_gaussian_model(rng)
    L, D = W.shape
    A, c, logv = 0.3 * rng.standard_normal((D, L)), 0.2 * rng.standard_normal(L), \
        rng.uniform(-1, 0.5, L)          # the encoder q(z|x) = N(x A + c, diag(exp(logv)))

    # step 1: dreams (z ~ p(z), x ~ p(x|z)) have z | x distributed as the true posterior:
    # the dream's gradient of log q minus its expectation under p(z|x) has mean 0
    n = 200_000
    z = rng.standard_normal((n, L))
    x = z @ W + b + np.sqrt(s2) * rng.standard_normal((n, D))
    mu, v = x @ A + c, np.exp(logv)
    post_mean = (x - b) @ W.T @ S / s2
    per_dream = np.concatenate([(z - mu) / v, 0.5 * ((z - mu) ** 2 / v - 1)], axis=1)
    expected = np.concatenate([(post_mean - mu) / v,
                               0.5 * (((post_mean - mu) ** 2 + np.diag(S)) / v - 1)], axis=1)
    diff = per_dream - expected
    z_scores = diff.mean(0) / (diff.std(0, ddof=1) / np.sqrt(n))
    assert np.max(np.abs(z_scores)) < 4.5, z_scores
    # and the model's marginal of x: N(b, W^T W + s2 I)
    np.testing.assert_allclose(np.cov(x.T), W.T @ W + s2 * np.eye(D), atol=0.05)

    # step 2, per x exactly: KL(p(z|x) || q(z|x)) = -H(p(z|x)) - E_{p(z|x)}[log q(z|x)]
    xs = x[:50]

    def expected_log_q(A, c, logv):                   # E_{p(z|x)} log q(z|x), closed form, (50,)
        mu, v, m = xs @ A + c, np.exp(logv), (xs - b) @ W.T @ S / s2
        return -0.5 * np.sum(((m - mu) ** 2 + np.diag(S)) / v + logv + np.log(2 * np.pi), axis=1)

    def expected_kl(A, c, logv):
        m = (xs - b) @ W.T @ S / s2
        return kl_full_gaussians_forward(
            m, np.broadcast_to(np.linalg.cholesky(S), (50, L, L)), xs @ A + c,
            np.broadcast_to(np.diag(np.exp(logv / 2)), (50, L, L)))[0]
    entropy = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * S)[1]
    np.testing.assert_allclose(expected_kl(A, c, logv), -entropy - expected_log_q(A, c, logv),
                               rtol=1e-10)

    # step 3: the entropy does not depend on phi, so the gradients are opposite
    for param in (A, c, logv):
        d_kl = numerical_gradient(lambda: np.mean(expected_kl(A, c, logv)), param)
        d_j = numerical_gradient(lambda: np.mean(expected_log_q(A, c, logv)), param)
        assert relative_error(d_kl, -d_j) < TOL
