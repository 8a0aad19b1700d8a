"""The Gaussian pieces: log-density, reparameterization, KL divergences.

Backwards against central differences in float64 (TOL); forward values
against independent references: scipy.stats densities, and Monte Carlo
estimates of each KL from samples drawn with numpy directly (not with the
library's reparameterization), accepted within 5 standard errors.
"""

import numpy as np
import pytest
from scipy import stats

from gradcheck_helpers import TOL
from numpyvae.ops.gaussian import (LOG_2PI, gaussian_log_density_backward,
                               gaussian_log_density_forward, kl_diag_gaussians_backward,
                               kl_diag_gaussians_forward,
                               kl_standard_normal_backward, kl_standard_normal_forward,
                               reparameterize_backward, reparameterize_forward,
                               standard_normal_log_density_forward)
from numpyvae.gradcheck import numerical_gradient_array, relative_error

N_MC = 200_000      # Monte Carlo samples per KL estimate
MC_SIGMAS = 5       # accept |KL - estimate| <= 5 standard errors


def random_gaussian(rng, shape, logvar_range=(-1.5, 1.5)):
    return rng.standard_normal(shape), rng.uniform(*logvar_range, size=shape)


def assert_within_monte_carlo(kl, samples_of_log_ratio):
    """samples (S,) or (S, N) of log q(z) - log p(z), z ~ q: their mean is KL."""
    estimate = samples_of_log_ratio.mean(axis=0)
    se = samples_of_log_ratio.std(axis=0, ddof=1) / np.sqrt(samples_of_log_ratio.shape[0])
    assert np.all(np.abs(kl - estimate) <= MC_SIGMAS * se), (kl, estimate, se)


# ------------------------------------------------------------ log-density --

def test_log_density_matches_scipy():
    rng = np.random.default_rng(0)
    mean, logvar = random_gaussian(rng, (4, 5))
    x = mean + np.exp(logvar / 2) * rng.standard_normal((4, 5)) * 2
    logp = gaussian_log_density_forward(x, mean, logvar)[0]
    assert logp.shape == (4,)
    np.testing.assert_allclose(
        logp, stats.norm.logpdf(x, mean, np.exp(logvar / 2)).sum(axis=1), rtol=1e-13)
    for n in range(4):
        mvn = stats.multivariate_normal(mean[n], np.diag(np.exp(logvar[n])))
        np.testing.assert_allclose(logp[n], mvn.logpdf(x[n]), rtol=1e-12)


def test_log_density_with_a_scalar_logvar():
    """A fixed variance broadcast from a scalar, as the fixed-variance decoder uses it."""
    rng = np.random.default_rng(1)
    x, mean = rng.standard_normal((3, 6)), rng.standard_normal((3, 6))
    logp = gaussian_log_density_forward(x, mean, np.log(0.3))[0]
    np.testing.assert_allclose(logp, stats.norm.logpdf(x, mean, np.sqrt(0.3)).sum(axis=1),
                               rtol=1e-13)


def test_standard_normal_log_density_matches_scipy():
    z = np.random.default_rng(2).standard_normal((5, 3)) * 2
    np.testing.assert_allclose(standard_normal_log_density_forward(z)[0],
                               stats.norm.logpdf(z).sum(axis=1), rtol=1e-13)
    assert LOG_2PI == pytest.approx(np.log(2 * np.pi), rel=1e-16)


def test_log_density_backward_matches_numerical():
    rng = np.random.default_rng(3)
    mean, logvar = random_gaussian(rng, (4, 5))
    x = rng.standard_normal((4, 5)) * 2
    dlogp = rng.standard_normal(4)
    _, cache = gaussian_log_density_forward(x, mean, logvar)
    dmean, dlogvar = gaussian_log_density_backward(dlogp, cache)
    forward = lambda: gaussian_log_density_forward(x, mean, logvar)[0]  # noqa: E731
    assert relative_error(dmean, numerical_gradient_array(forward, mean, dlogp)) <= TOL
    assert relative_error(dlogvar, numerical_gradient_array(forward, logvar, dlogp)) <= TOL


# ------------------------------------------------------ reparameterization --

def test_reparameterize_forward_value():
    rng = np.random.default_rng(4)
    mu, logvar = random_gaussian(rng, (3, 4))
    eps = rng.standard_normal((3, 4))
    z, _ = reparameterize_forward(mu, logvar, eps)
    np.testing.assert_allclose(z, mu + np.sqrt(np.exp(logvar)) * eps, rtol=1e-14, atol=1e-15)


def test_reparameterize_backward_matches_numerical():
    rng = np.random.default_rng(5)
    mu, logvar = random_gaussian(rng, (3, 4))
    eps = rng.standard_normal((3, 4))   # held fixed: z is a deterministic function of mu, logvar
    dz = rng.standard_normal((3, 4))
    _, cache = reparameterize_forward(mu, logvar, eps)
    dmu, dlogvar = reparameterize_backward(dz, cache)
    forward = lambda: reparameterize_forward(mu, logvar, eps)[0]  # noqa: E731
    assert relative_error(dmu, numerical_gradient_array(forward, mu, dz)) <= TOL
    assert relative_error(dlogvar, numerical_gradient_array(forward, logvar, dz)) <= TOL


@pytest.mark.parametrize("logvar", [-2.0, 0.0, 1.5])
def test_reparameterized_samples_have_mean_mu_and_variance_exp_logvar(logvar):
    """z = mu + exp(logvar/2) eps has variance exp(logvar), not exp(logvar)^2
    (which a std of exp(logvar) would give)."""
    n, mu = 400_000, 0.7
    eps = np.random.default_rng(6).standard_normal((n, 1))
    z, _ = reparameterize_forward(np.full((n, 1), mu), np.full((n, 1), logvar), eps)
    var = np.exp(logvar)
    assert abs(z.mean() - mu) <= MC_SIGMAS * np.sqrt(var / n)
    se_var = var * np.sqrt(2 / (n - 1))           # standard error of a Gaussian sample variance
    assert abs(z.var(ddof=1) - var) <= MC_SIGMAS * se_var
    if logvar != 0:
        assert abs(z.var(ddof=1) - var ** 2) > 100 * se_var


# ------------------------------------------------------------ KL to N(0,I) --

def test_kl_standard_normal_matches_monte_carlo():
    rng = np.random.default_rng(7)
    mu, logvar = random_gaussian(rng, (3, 2))
    kl, _ = kl_standard_normal_forward(mu, logvar)
    assert kl.shape == (3,)
    std = np.exp(logvar / 2)
    z = mu + std * rng.standard_normal((N_MC, 3, 2))      # z ~ q, drawn directly
    log_ratio = (stats.norm.logpdf(z, mu, std) - stats.norm.logpdf(z)).sum(axis=-1)
    assert_within_monte_carlo(kl, log_ratio)


def test_kl_standard_normal_special_cases():
    assert kl_standard_normal_forward(np.zeros((1, 4)), np.zeros((1, 4)))[0][0] == 0.0
    # KL(N(m, 1) || N(0, 1)) = m^2 / 2
    np.testing.assert_allclose(kl_standard_normal_forward(np.array([[3.0]]), np.zeros((1, 1)))[0],
                               [4.5], rtol=1e-15)


def test_kl_standard_normal_backward_matches_numerical():
    rng = np.random.default_rng(8)
    mu, logvar = random_gaussian(rng, (4, 3))
    dkl = rng.standard_normal(4)
    _, cache = kl_standard_normal_forward(mu, logvar)
    dmu, dlogvar = kl_standard_normal_backward(dkl, cache)
    forward = lambda: kl_standard_normal_forward(mu, logvar)[0]  # noqa: E731
    assert relative_error(dmu, numerical_gradient_array(forward, mu, dkl)) <= TOL
    assert relative_error(dlogvar, numerical_gradient_array(forward, logvar, dkl)) <= TOL


# ------------------------------------------------------ KL diag || diag --

def test_kl_diag_matches_monte_carlo():
    rng = np.random.default_rng(9)
    mu_q, logvar_q = random_gaussian(rng, (3, 2))
    mu_p, logvar_p = random_gaussian(rng, (3, 2))
    kl, _ = kl_diag_gaussians_forward(mu_q, logvar_q, mu_p, logvar_p)
    std_q, std_p = np.exp(logvar_q / 2), np.exp(logvar_p / 2)
    z = mu_q + std_q * rng.standard_normal((N_MC, 3, 2))
    log_ratio = (stats.norm.logpdf(z, mu_q, std_q) - stats.norm.logpdf(z, mu_p, std_p)).sum(axis=-1)
    assert_within_monte_carlo(kl, log_ratio)


def test_kl_diag_reduces_to_kl_standard_normal_and_is_zero_for_equal_arguments():
    rng = np.random.default_rng(10)
    mu, logvar = random_gaussian(rng, (4, 3))
    zeros = np.zeros_like(mu)
    np.testing.assert_allclose(kl_diag_gaussians_forward(mu, logvar, zeros, zeros)[0],
                               kl_standard_normal_forward(mu, logvar)[0], rtol=1e-14)
    np.testing.assert_allclose(kl_diag_gaussians_forward(mu, logvar, mu, logvar)[0], 0.0, atol=1e-15)


def test_kl_diag_backward_matches_numerical_for_all_four_inputs():
    rng = np.random.default_rng(11)
    inputs = [*random_gaussian(rng, (4, 3)), *random_gaussian(rng, (4, 3))]
    dkl = rng.standard_normal(4)
    _, cache = kl_diag_gaussians_forward(*inputs)
    analytic = kl_diag_gaussians_backward(dkl, cache)
    forward = lambda: kl_diag_gaussians_forward(*inputs)[0]  # noqa: E731
    for name, a, g in zip(("mu_q", "logvar_q", "mu_p", "logvar_p"), inputs, analytic):
        assert relative_error(g, numerical_gradient_array(forward, a, dkl)) <= TOL, name


# -------------------------------------------------- KL full || full --
