"""Decoders p(x|z): each log-likelihood's value (against scipy or a hand
formula) and its gradient w.r.t. the decoder output (central differences)."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from gradcheck_helpers import TOL
from numpyvae.gradcheck import numerical_gradient_array, relative_error
from numpyvae.likelihoods import (BernoulliLikelihood, BernoulliLikelihoodFast, GaussianLikelihood,
                                  make_likelihood)


def decoder_gradient_error(lik, x, out, rng):
    """Relative error of dL/d(decoder output) for an upstream gradient per example."""
    dlogp = rng.standard_normal(x.shape[0])
    _, cache = lik.log_prob_forward(x, out)
    dout = lik.log_prob_backward(dlogp, cache)
    assert dout.shape == out.shape
    numerical = numerical_gradient_array(lambda: lik.log_prob_forward(x, out)[0], out, dlogp)
    return relative_error(dout, numerical)


# -------------------------------------------------------------- Bernoulli --

BERNOULLI_FORMS = [BernoulliLikelihood, BernoulliLikelihoodFast]   # textbook and fast


@pytest.mark.parametrize("form", BERNOULLI_FORMS)
def test_bernoulli_log_prob_matches_scipy_for_binary_x(form):
    rng = np.random.default_rng(0)
    logits = rng.uniform(-8, 8, (5, 7))
    x = (rng.random((5, 7)) < 0.5).astype(np.float64)
    logp, _ = form().log_prob_forward(x, logits)
    assert logp.shape == (5,)
    np.testing.assert_allclose(logp, stats.bernoulli.logpmf(x, expit(logits)).sum(axis=1),
                               rtol=1e-12)


@pytest.mark.parametrize("form", BERNOULLI_FORMS)
def test_bernoulli_log_prob_for_grey_levels_is_the_cross_entropy(form):
    """For x in [0, 1]: sum_d x log p + (1 - x) log(1 - p), p = sigmoid(logit)."""
    rng = np.random.default_rng(1)
    logits, x = rng.uniform(-8, 8, (5, 7)), rng.random((5, 7))
    p = expit(logits)
    expected = np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), axis=1)
    np.testing.assert_allclose(form().log_prob_forward(x, logits)[0], expected, rtol=1e-12)


@pytest.mark.parametrize("form", BERNOULLI_FORMS)
def test_bernoulli_log_prob_is_exact_for_extreme_logits(form):
    """|logit| = 50: sigmoid is 1 - 2e-22 in exact arithmetic, so log(sigmoid)
    would give 0 or -inf; the library must still give x*l - log(1 + e^l)."""
    logits = np.array([[50.0, -50.0, 50.0, -50.0, 700.0, -700.0]])
    x = np.array([[1.0, 0.0, 0.0, 1.0, 0.25, 0.75]])
    expected = np.sum(x * logits - np.logaddexp(0, logits), axis=1)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        logp, cache = form().log_prob_forward(x, logits)
        dlogits = form().log_prob_backward(np.ones(1), cache)
    np.testing.assert_allclose(logp, expected, rtol=1e-15)
    np.testing.assert_allclose(dlogits, x - expit(logits), rtol=0, atol=1e-15)


@pytest.mark.parametrize("form", BERNOULLI_FORMS)
def test_bernoulli_gradient_matches_numerical(form):
    rng = np.random.default_rng(2)
    logits, x = rng.uniform(-4, 4, (4, 6)), rng.random((4, 6))
    assert decoder_gradient_error(form(), x, logits, rng) <= TOL


def test_bernoulli_mean_and_outputs():
    lik = make_likelihood("bernoulli")
    logits = np.array([[-2.0, 0.0, 3.0]])
    np.testing.assert_allclose(lik.mean(logits), expit(logits), rtol=1e-15)
    assert lik.n_outputs(7) == 7


@pytest.mark.parametrize("bad", [-0.01, 1.01, 255.0])
def test_bernoulli_rejects_data_outside_unit_interval(bad):
    x = np.array([[0.0, 0.5, bad]])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BernoulliLikelihood().check_range(x.min(), x.max())


# ------------------------------------------------------ Gaussian, fixed var --

@pytest.mark.parametrize("obs_var", [1.0, 0.05, 3.0])
def test_gaussian_fixed_variance_log_prob_matches_scipy(obs_var):
    rng = np.random.default_rng(3)
    x, mean = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    lik = make_likelihood("gaussian", obs_var)
    logp, _ = lik.log_prob_forward(x, mean)
    np.testing.assert_allclose(logp, stats.norm.logpdf(x, mean, np.sqrt(obs_var)).sum(axis=1),
                               rtol=1e-13)
    if obs_var == 1.0:   # the "MSE" decoder: -log p = ||x - mean||^2 / 2 + D/2 log(2 pi)
        np.testing.assert_allclose(-logp, 0.5 * np.sum((x - mean) ** 2, axis=1)
                                   + 3 * np.log(2 * np.pi), rtol=1e-13)


@pytest.mark.parametrize("obs_var", [1.0, 0.05])
def test_gaussian_fixed_variance_gradient_matches_numerical(obs_var):
    rng = np.random.default_rng(4)
    x, mean = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    lik = make_likelihood("gaussian", obs_var)
    assert decoder_gradient_error(lik, x, mean, rng) <= TOL
    assert lik.n_outputs(6) == 6
    np.testing.assert_array_equal(lik.mean(mean), mean)


# ---------------------------------------------------- Gaussian, learned var --

def test_gaussian_learned_variance_log_prob_matches_scipy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 6))
    out = np.concatenate([rng.standard_normal((4, 6)), rng.uniform(-2, 2, (4, 6))], axis=1)
    lik = make_likelihood("gaussian", "learned")
    assert lik.n_outputs(6) == 12
    mean, logvar = out[:, :6], out[:, 6:]
    np.testing.assert_allclose(lik.log_prob_forward(x, out)[0],
                               stats.norm.logpdf(x, mean, np.exp(logvar / 2)).sum(axis=1),
                               rtol=1e-13)
    for n in range(4):
        mvn = stats.multivariate_normal(mean[n], np.diag(np.exp(logvar[n])))
        np.testing.assert_allclose(lik.log_prob_forward(x, out)[0][n], mvn.logpdf(x[n]), rtol=1e-12)
    np.testing.assert_array_equal(lik.mean(out), mean)


def test_gaussian_learned_variance_gradient_matches_numerical():
    """Gradient w.r.t. both halves of the decoder output, [mean, logvar]."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 6))
    out = np.concatenate([rng.standard_normal((4, 6)), rng.uniform(-2, 2, (4, 6))], axis=1)
    assert decoder_gradient_error(make_likelihood("gaussian", "learned"), x, out, rng) <= TOL


# ------------------------------------------------------------ construction --

def test_make_likelihood_kinds():
    assert isinstance(make_likelihood("bernoulli"), BernoulliLikelihoodFast)
    assert isinstance(make_likelihood("gaussian", 2.0), GaussianLikelihood)
    assert make_likelihood("gaussian", "learned").learned
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'"):
        make_likelihood("poisson")


@pytest.mark.parametrize("obs_var, error", [
    (0, ValueError), (-1.0, ValueError), (np.nan, ValueError), (np.inf, ValueError),
    ("fixed", ValueError), ("Learned", ValueError), (None, TypeError), ([1.0], TypeError)])
def test_gaussian_rejects_bad_obs_var(obs_var, error):
    with pytest.raises(error, match="obs_var must be a"):
        make_likelihood("gaussian", obs_var)
