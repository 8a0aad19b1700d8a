"""The claims of docs/ that no other test checks, each against an independent computation.

The model of the ELBO tests is the linear-Gaussian VAE, where everything is known
in closed form: p(z) = N(0, I), p(x|z) = N(z W + b, s2 I), so
p(x) = N(b, W^T W + s2 I) and p(z|x) = N((x - b) W^T S / s2, S), S = (I + W W^T / s2)^-1.
"""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit
from scipy.stats import multivariate_normal

from numpyvae import VAE
from numpyvae.ops.full_gaussian import kl_full_gaussians_forward
from numpyvae.ops.gaussian import (kl_standard_normal_forward, log_density_at_sample_forward,
                                   reparameterize_forward, standard_normal_log_density_forward)
from numpyvae.gradcheck import numerical_gradient, relative_error
from numpyvae.ops.layers import log1p_fast, softplus

TOL = 1e-7  # float64 central differences
D, L, S2 = 5, 3, 0.3


def kl_full_gaussians(mu_q, cov_q, mu_p, cov_p):
    """KL(N(mu_q, cov_q) || N(mu_p, cov_p)) of covariances, through their Cholesky factors."""
    return kl_full_gaussians_forward(mu_q, np.linalg.cholesky(cov_q), mu_p,
                                     np.linalg.cholesky(cov_p))[0]


def linear_gaussian(seed=0):
    rng = np.random.default_rng(seed)
    W, b = rng.standard_normal((L, D)), rng.standard_normal(D)
    S = np.linalg.inv(np.eye(L) + W @ W.T / S2)
    marginal = multivariate_normal(b, W.T @ W + S2 * np.eye(D))
    return W, b, S, marginal


def elbo_closed_form(x, mu, var, W, b):
    """E_q[log p(x|z)] - KL(q || N(0, I)) for q = N(mu, diag(var)), exactly:
    E_q ||x - z W - b||^2 = ||x - mu W - b||^2 + sum_l var_l ||W_l||^2."""
    sq = np.sum((x - mu @ W - b) ** 2) + np.sum(var * np.sum(W * W, axis=1))
    recon = -0.5 * (sq / S2 + D * np.log(2 * np.pi * S2))
    return recon - kl_standard_normal_forward(mu[None], np.log(var)[None])[0][0]


# ------------------------------------------------------------ docs/elbo.md --

def test_log_px_is_the_elbo_plus_the_kl_to_the_true_posterior():
    """log p(x) = ELBO(q) + KL(q(z|x) || p(z|x)) for any q, so ELBO <= log p(x) (Jensen),
    with equality at q = p(z|x)."""
    W, b, S, marginal = linear_gaussian()
    rng = np.random.default_rng(1)
    for x in marginal.rvs(5, random_state=2):
        post_mean = (x - b) @ W.T @ S / S2
        mu, var = rng.standard_normal(L), np.exp(rng.standard_normal(L))   # any diagonal q
        elbo = elbo_closed_form(x, mu, var, W, b)
        gap = kl_full_gaussians(mu, np.diag(var), post_mean, S)
        assert np.isclose(elbo + gap, marginal.logpdf(x), rtol=0, atol=1e-10)
        assert gap > 0 and elbo < marginal.logpdf(x)


def test_the_elbo_of_the_code_is_the_closed_form_elbo():
    """The model's own one-sample terms average to the closed-form ELBO above."""
    W, b, S, marginal = linear_gaussian()
    model = VAE(D, (), L, likelihood="gaussian", obs_var=S2, dtype=np.float64)
    model.params["decoder.0.W"][...] = W
    model.params["decoder.0.b"][...] = b
    encoder_w = model.params["encoder.0.W"]
    encoder_w[...] = 0.3 * np.random.default_rng(3).standard_normal(encoder_w.shape)
    x = marginal.rvs(1, random_state=4)[None]
    mu, logvar = model.encode(x)
    n = 200_000
    logpx, kl = model.elbo_terms(np.repeat(x, n, axis=0), rng=np.random.default_rng(5))
    estimate = np.mean(logpx - kl)
    se = np.std(logpx) / np.sqrt(n)
    assert abs(estimate - elbo_closed_form(x[0], mu[0], np.exp(logvar[0]), W, b)) < 5 * se


def test_the_kl_term_keeps_the_posterior_variance_from_collapsing():
    """For one latent dimension of the linear-Gaussian model the reconstruction
    term alone is best at var -> 0, and with the KL term the best var is
    1 / (1 + ||w||^2 / s2): the exact posterior variance (docs/elbo.md)."""
    rng = np.random.default_rng(0)
    w, b = rng.standard_normal((1, D)), rng.standard_normal(D)
    x, mu = rng.standard_normal(D), np.array([0.4])

    def recon(logvar):
        sq = np.sum((x - mu @ w - b) ** 2) + np.exp(logvar) * np.sum(w * w)
        return -0.5 * (sq / S2 + D * np.log(2 * np.pi * S2))

    def neg_elbo(logvar):
        return -recon(logvar) + kl_standard_normal_forward(mu[None], np.array([[logvar]]))[0][0]

    assert recon(-20) > recon(-5) > recon(0)                 # no KL: smaller is always better
    best = minimize_scalar(neg_elbo, bounds=(-20, 5), method="bounded",
                           options={"xatol": 1e-10}).x
    assert np.isclose(np.exp(best), 1 / (1 + np.sum(w * w) / S2), rtol=1e-6)


# -------------------------------------------------------------- docs/kl.md --

def test_the_seeds_one_dimensional_kl():
    """KL(N(mu, sigma^2) || N(0, 1)) = log(1/sigma) + (sigma^2 + mu^2)/2 - 1/2."""
    mu, sigma = np.array([[0.3], [-2.0]]), np.array([[0.5], [3.0]])
    kl = kl_standard_normal_forward(mu, np.log(sigma ** 2))[0]
    assert np.allclose(kl, (np.log(1 / sigma) + (sigma ** 2 + mu ** 2) / 2 - 0.5)[:, 0])


def random_spd(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def test_full_covariance_kl_gradients():
    """docs/kl.md: with d = mu_q - mu_p and P = cov_p^-1,

        dKL/dmu_q = P d,  dKL/dmu_p = -P d,
        dKL/dcov_q = (P - cov_q^-1) / 2,  dKL/dcov_p = (P - P (cov_q + d d^T) P) / 2,

    symmetric matrices, so dKL = tr(G dC) for every symmetric perturbation dC: checked
    entry by entry with the symmetric perturbation of C_ij and C_ji together."""
    rng = np.random.default_rng(0)
    n = 3
    mu_q, mu_p = rng.standard_normal(n), rng.standard_normal(n)
    cov_q, cov_p = random_spd(rng, n), random_spd(rng, n)
    d, P = mu_q - mu_p, np.linalg.inv(cov_p)
    expected = {"mu_q": P @ d, "mu_p": -P @ d,
                "cov_q": 0.5 * (P - np.linalg.inv(cov_q)),
                "cov_p": 0.5 * (P - P @ (cov_q + np.outer(d, d)) @ P)}
    args = {"mu_q": mu_q, "cov_q": cov_q, "mu_p": mu_p, "cov_p": cov_p}

    def kl():
        return kl_full_gaussians(args["mu_q"], args["cov_q"], args["mu_p"], args["cov_p"])

    for name in ("mu_q", "mu_p"):
        assert relative_error(numerical_gradient(kl, args[name]), expected[name]) < TOL, name
    for name in ("cov_q", "cov_p"):
        grad = np.zeros((n, n))
        for i in range(n):
            for j in range(i, n):
                t = np.zeros((n, n))
                t[i, j] = t[j, i] = 1                     # a symmetric direction
                step = np.zeros(1)
                base = args[name].copy()

                def along():
                    args[name] = base + step[0] * t
                    return kl()

                grad[i, j] = grad[j, i] = numerical_gradient(along, step)[0]
                args[name] = base
        # tr(G T) = G_ij + G_ji = 2 G_ij off the diagonal, G_ii on it
        directional = np.where(np.eye(n) == 1, expected[name], 2 * expected[name])
        assert relative_error(grad, directional) < TOL, name


# --------------------------------------------------------- docs/bernoulli.md --

@pytest.mark.parametrize("x", [0.0, 0.3, 1.0])
def test_bernoulli_identities(x):
    """x log s + (1-x) log(1-s) = x l - softplus(l) = (x - 1/2) l - |l|/2 - log1p(exp(-|l|)),
    its fast form with layers.log1p_fast, and its derivative
    x - sigmoid(l) = (x - 1/2) - tanh(l/2)/2 = (x - 1/2) - sign(l) (1/(1 + y) - 1/2)."""
    l = np.linspace(-30, 30, 121)
    textbook = x * log_expit(l) + (1 - x) * log_expit(-l)
    assert np.allclose(x * l - softplus(l), textbook, rtol=1e-13, atol=1e-13)
    assert np.allclose((x - 0.5) * l - np.abs(l) / 2 - np.log1p(np.exp(-np.abs(l))), textbook,
                       rtol=1e-13, atol=1e-13)
    assert np.allclose((x - 0.5) * l - np.abs(l) / 2 - log1p_fast(np.exp(-np.abs(l)))[0], textbook,
                       rtol=1e-13, atol=1e-13)
    assert np.allclose(x - expit(l), (x - 0.5) - np.tanh(l / 2) / 2, rtol=0, atol=1e-15)
    s = 1 / (1 + np.exp(-np.abs(l)))
    assert np.allclose(x - expit(l), (x - 0.5) - np.sign(l) * (s - 0.5), rtol=0, atol=1e-15)


# -------------------------------------------------------- docs/objectives.md --

def test_the_sampled_kl_gradient():
    """Estimator A's KL term at z = mu + std eps, log q(z|x) - log p(z), has total
    derivatives (eps fixed) d/dmu = z and d/dlogvar = z eps std / 2 - 1/2, whose
    expectations are the closed-form KL's mu and (exp(logvar) - 1) / 2."""
    rng = np.random.default_rng(0)
    mu, logvar, eps = rng.standard_normal((2, 4)), rng.standard_normal((2, 4)), \
        rng.standard_normal((2, 4))

    def sampled_kl():
        z = reparameterize_forward(mu, logvar, eps)[0]
        return np.sum(log_density_at_sample_forward(eps[None], logvar)[0]
                      - standard_normal_log_density_forward(z)[0])

    z, std = mu + np.exp(logvar / 2) * eps, np.exp(logvar / 2)
    assert relative_error(numerical_gradient(sampled_kl, mu), z) < TOL
    assert relative_error(numerical_gradient(sampled_kl, logvar), z * eps * std / 2 - 0.5) < TOL


# --------------------------------------------------------------- docs/adam.md --

def test_adam_first_step_sizes_with_and_without_bias_correction():
    """The first step of Adam (b1 = 0.9, b2 = 0.999, eps -> 0) in units of lr, for g != 0:
    1 with both corrections, (1 - b1) / sqrt(1 - b2) = 3.16 without either,
    1 / sqrt(1 - b2) = 31.6 with only m corrected, 1 - b1 = 0.1 with only v corrected."""
    b1, b2, g = 0.9, 0.999, np.array([-3.0, 0.01, 7.0])
    m, v = (1 - b1) * g, (1 - b2) * g * g
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    assert np.allclose(m_hat / np.sqrt(v_hat), np.sign(g))
    assert np.allclose(m / np.sqrt(v), 3.1623 * np.sign(g), rtol=1e-4)
    assert np.allclose(m_hat / np.sqrt(v), 31.623 * np.sign(g), rtol=1e-4)
    assert np.allclose(m / np.sqrt(v_hat), 0.1 * np.sign(g))
