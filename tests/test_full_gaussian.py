"""The full-covariance posterior N(mu, L L^T): ops/full_gaussian.py and model/full_covariance_vae.py.

Every backward against central differences in float64 (numpyvae.gradcheck), the
sampling distribution of z = mu + L eps, the diagonal case against ops/gaussian.py,
the KLs against Monte Carlo and scipy, and the model: its gradients under each
objective, its importance-weighted log p(x) on a linear-Gaussian model whose
exact posterior it can represent, saving, the objectives it refuses, and --posterior.
"""

import numpy as np
import pytest
from scipy import stats

from numpyvae.evaluate import (importance_weighted_log_likelihood,
                               importance_weighted_log_likelihood_fast)
from numpyvae import FullCovarianceVAE, VAE, load_model
from numpyvae.gradcheck import check_backward, numerical_gradient, relative_error
from numpyvae.objectives import bound
from numpyvae.ops import full_gaussian, gaussian
from numpyvae.run.settings import RunConfig, RunError, build_model, resume_differences
from run_helpers import quiet_fit, synthetic, tiny_config

TOL = 1e-7         # max relative error of a float64 central-difference check
N, n, K = 3, 4, 2  # examples, latent dimension, samples per example


def random_factor(rng, shape=(N,), n=n):
    """Lower-triangular factors (shape + (n, n)) with diagonal in [0.5, 1.5], and their raw outputs."""
    log_diag = np.log(rng.uniform(0.5, 1.5, shape + (n,)))
    lower = 0.5 * rng.standard_normal(shape + (full_gaussian.strictly_lower_size(n),))
    return full_gaussian.factor_forward(log_diag, lower)[0], log_diag, lower


def assert_checks_pass(rows):
    for row in rows:
        assert row.passed and row.max_rel_error < TOL, str(row)


def lower_only(forward_of_factor):
    """A forward of L's lower triangle only (the entries above the diagonal are not
    parameters, so central differences must not move them)."""
    def forward(*args):
        *rest, factor = args
        return forward_of_factor(*rest, np.tril(factor))
    return forward


# -------------------------------------------------------- the gradient checks --

def test_factor_backward():
    rng = np.random.default_rng(0)
    _, log_diag, lower = random_factor(rng, (K, N))
    assert_checks_pass(check_backward(full_gaussian.factor_forward, full_gaussian.factor_backward,
                                      {"log_diag": log_diag, "lower": lower}))


def test_factor_places_the_entries_row_by_row_and_rejects_a_wrong_width():
    factor = full_gaussian.factor_forward(np.log([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))[0]
    np.testing.assert_allclose(factor, [[1, 0, 0], [4, 2, 0], [5, 6, 3]], rtol=1e-15)
    with pytest.raises(ValueError, match="lower must have n\\(n-1\\)/2 = 3"):
        full_gaussian.factor_forward(np.zeros(3), np.zeros(2))


def test_reparameterize_backward():
    rng = np.random.default_rng(1)
    factor = random_factor(rng)[0]
    mu, eps = rng.standard_normal((N, n)), rng.standard_normal((K, N, n))

    def forward(eps, mu, factor):
        z, cache = full_gaussian.reparameterize_forward(mu, np.tril(factor), eps)
        return z, cache

    def backward(dz, cache):
        dmu, dfactor = full_gaussian.reparameterize_backward(dz, cache)
        return dmu.sum(axis=0), dfactor.sum(axis=0)              # the k samples share mu, L

    assert_checks_pass(check_backward(forward, backward, {"eps": eps, "mu": mu, "factor": factor},
                                      wrt=("mu", "factor")))


def test_log_density_at_sample_backward_gives_the_partials_of_log_n():
    """The backward's three partials are those of log N(z; mu, L L^T) with z, mu, L
    independent (scipy's density, at eps = L^-1 (z - mu))."""
    rng = np.random.default_rng(2)
    factor = random_factor(rng)[0]
    mu, eps = rng.standard_normal((N, n)), rng.standard_normal((K, N, n))
    z = full_gaussian.reparameterize_forward(mu, factor, eps)[0]

    def forward(z, mu, factor):
        factor = np.tril(factor)
        eps = np.linalg.solve(factor, (z - mu)[..., None])[..., 0]
        return full_gaussian.log_density_at_sample_forward(eps, factor)

    def backward(dlogq, cache):
        dz, dmu, dfactor = full_gaussian.log_density_at_sample_backward(dlogq, cache)
        return dz, dmu.sum(axis=0), dfactor.sum(axis=0)

    assert_checks_pass(check_backward(forward, backward, {"z": z, "mu": mu, "factor": factor}))
    logq = full_gaussian.log_density_at_sample_forward(eps, factor)[0]
    for i in range(N):
        scipy_logq = stats.multivariate_normal(mu[i], factor[i] @ factor[i].T).logpdf(z[:, i])
        np.testing.assert_allclose(logq[:, i], scipy_logq, rtol=1e-12)


def test_kl_standard_normal_backward():
    rng = np.random.default_rng(3)
    factor = random_factor(rng)[0]
    mu = rng.standard_normal((N, n))
    assert_checks_pass(check_backward(lower_only(full_gaussian.kl_standard_normal_forward),
                                      full_gaussian.kl_standard_normal_backward,
                                      {"mu": mu, "factor": factor}))


def test_kl_full_gaussians_backward():
    rng = np.random.default_rng(4)
    factor1, factor2 = random_factor(rng)[0], random_factor(rng)[0]
    mu1, mu2 = rng.standard_normal((N, n)), rng.standard_normal((N, n))

    def forward(mu1, factor1, mu2, factor2):
        return full_gaussian.kl_full_gaussians_forward(mu1, np.tril(factor1), mu2, np.tril(factor2))

    assert_checks_pass(check_backward(forward, full_gaussian.kl_full_gaussians_backward,
                                      {"mu1": mu1, "factor1": factor1, "mu2": mu2,
                                       "factor2": factor2}))


@pytest.mark.parametrize("op", ["reparameterize", "log_density_at_sample", "kl_standard_normal"])
def test_the_posterior_backwards_reach_the_raw_encoder_outputs(op):
    """full_gaussian.Posterior: each op composed with the factor, checked end to end in
    the encoder's outputs [log_diag, lower] (the 'scale' block after mu)."""
    rng = np.random.default_rng(5)
    _, log_diag, lower = random_factor(rng)
    scale = np.concatenate([log_diag, lower], axis=-1)
    mu, eps = rng.standard_normal((N, n)), rng.standard_normal((K, N, n))
    post = full_gaussian.Posterior
    if op == "reparameterize":
        rows = check_backward(lambda mu, scale: post.reparameterize_forward(mu, scale, eps),
                              lambda dz, c: [g.sum(axis=0) for g in post.reparameterize_backward(dz, c)],
                              {"mu": mu, "scale": scale})
    elif op == "log_density_at_sample":   # the partials: z, mu, scale independent
        z = post.reparameterize_forward(mu, scale, eps)[0]

        def forward(z, mu, scale):
            factor = post.factor_forward(scale, n)[0]
            eps = np.linalg.solve(factor, (z - mu)[..., None])[..., 0]     # L^-1 (z - mu)
            return post.log_density_at_sample_forward(eps, scale)

        def backward(dlogq, cache):
            dz, dmu, dscale = post.log_density_at_sample_backward(dlogq, cache)
            return dz, dmu.sum(axis=0), dscale.sum(axis=0)

        rows = check_backward(forward, backward, {"z": z, "mu": mu, "scale": scale})
    else:
        rows = check_backward(post.kl_standard_normal_forward, post.kl_standard_normal_backward,
                              {"mu": mu, "scale": scale})
    assert_checks_pass(rows)


def test_log_q_partials_and_the_path_through_z_sum_to_the_total_derivative():
    """d log q / d scale at fixed eps = the partial + the path z = mu + L eps, and the
    total is -d sum log L_ii = -1 on each log_diag and 0 on the strictly lower entries."""
    rng = np.random.default_rng(6)
    _, log_diag, lower = random_factor(rng)
    scale = np.concatenate([log_diag, lower], axis=-1)
    mu, eps = rng.standard_normal((N, n)), rng.standard_normal((K, N, n))
    post = full_gaussian.Posterior
    _, rep_cache = post.reparameterize_forward(mu, scale, eps)
    _, q_cache = post.log_density_at_sample_forward(eps, scale)
    dz, dmu, dscale = post.log_density_at_sample_backward(np.ones((K, N)), q_cache)
    dmu_via_z, dscale_via_z = post.reparameterize_backward(dz, rep_cache)
    np.testing.assert_allclose(dmu + dmu_via_z, 0, atol=1e-12)
    expected = np.concatenate([-np.ones((K, N, n)), np.zeros((K, N, lower.shape[-1]))], axis=-1)
    np.testing.assert_allclose(dscale + dscale_via_z, expected, atol=1e-12)


# -------------------------------------------------------------- the sampling --

def test_z_has_mean_mu_and_covariance_l_l_transpose():
    """S = 200,000 draws.  The sample covariance's entry (i, j) has standard error
    sqrt((Sigma_ii Sigma_jj + Sigma_ij^2) / S) (the variance of z_i z_j for a
    Gaussian), the mean's sqrt(Sigma_ii / S); accept 5 standard errors per entry
    (a false alarm per entry at rate 6e-7)."""
    rng = np.random.default_rng(7)
    samples = 200_000
    factor = random_factor(rng, (1,))[0]
    mu = rng.standard_normal((1, n))
    eps = rng.standard_normal((samples, 1, n))
    z = full_gaussian.reparameterize_forward(mu, factor, eps)[0][:, 0]       # (S, n)
    sigma = factor[0] @ factor[0].T
    var = np.diag(sigma)
    mean_se = np.sqrt(var / samples)
    cov_se = np.sqrt((np.outer(var, var) + sigma ** 2) / samples)
    assert np.all(np.abs(z.mean(axis=0) - mu[0]) < 5 * mean_se)
    assert np.all(np.abs(np.cov(z, rowvar=False) - sigma) < 5 * cov_se)
    assert np.max(np.abs(sigma - np.diag(var))) > 20 * np.max(cov_se)      # a real correlation


# ------------------------------------------------------- the diagonal case --

def test_the_diagonal_case_is_the_diagonal_posterior():
    """lower = 0, log_diag = logvar / 2: z, log q, the KL and every gradient equal
    ops/gaussian.py's to rounding (d/dlogvar = d/dlog_diag / 2)."""
    rng = np.random.default_rng(8)
    mu, logvar = rng.standard_normal((N, n)), rng.uniform(-1.5, 1.5, (N, n))
    eps, dz, dlogq = rng.standard_normal((K, N, n)), rng.standard_normal((K, N, n)), \
        rng.standard_normal((K, N))
    dkl = rng.standard_normal(N)
    scale = np.concatenate([logvar / 2, np.zeros((N, full_gaussian.strictly_lower_size(n)))], axis=-1)
    post = full_gaussian.Posterior

    def close(full, diag):
        np.testing.assert_allclose(full, diag, rtol=1e-12, atol=1e-14)

    z, rep_cache = post.reparameterize_forward(mu, scale, eps)
    z_diag, rep_cache_diag = gaussian.reparameterize_forward(mu, logvar, eps)
    close(z, z_diag)
    (dmu, dscale), (dmu_diag, dlogvar) = (post.reparameterize_backward(dz, rep_cache),
                                          gaussian.reparameterize_backward(dz, rep_cache_diag))
    close(dmu, dmu_diag)
    close(dscale[..., :n] / 2, dlogvar)

    logq, q_cache = post.log_density_at_sample_forward(eps, scale)
    logq_diag, q_cache_diag = gaussian.log_density_at_sample_forward(eps, logvar)
    close(logq, logq_diag)
    for full, diag in zip(post.log_density_at_sample_backward(dlogq, q_cache)[:2],
                          gaussian.log_density_at_sample_backward(dlogq, q_cache_diag)[:2]):
        close(full, diag)
    close(post.log_density_at_sample_backward(dlogq, q_cache)[2][..., :n] / 2,
          gaussian.log_density_at_sample_backward(dlogq, q_cache_diag)[2])

    kl, kl_cache = post.kl_standard_normal_forward(mu, scale)
    kl_diag, kl_cache_diag = gaussian.kl_standard_normal_forward(mu, logvar)
    close(kl, kl_diag)
    (dmu, dscale), (dmu_diag, dlogvar) = (post.kl_standard_normal_backward(dkl, kl_cache),
                                          gaussian.kl_standard_normal_backward(dkl, kl_cache_diag))
    close(dmu, dmu_diag)
    close(dscale[..., :n] / 2, dlogvar)


def test_kl_full_equals_kl_diag_for_diagonal_factors():
    rng = np.random.default_rng(9)
    mu_q, logvar_q = rng.standard_normal((5, n)), rng.uniform(-1.5, 1.5, (5, n))
    mu_p, logvar_p = rng.standard_normal((5, n)), rng.uniform(-1.5, 1.5, (5, n))
    eye = np.eye(n)
    kl = full_gaussian.kl_full_gaussians_forward(mu_q, np.exp(logvar_q / 2)[..., None] * eye,
                                                 mu_p, np.exp(logvar_p / 2)[..., None] * eye)[0]
    np.testing.assert_allclose(kl, gaussian.kl_diag_gaussians_forward(mu_q, logvar_q, mu_p,
                                                                      logvar_p)[0], rtol=1e-12)


# ------------------------------------------------------------------ the KLs --

def test_kl_full_matches_monte_carlo():
    """200,000 draws from q; accept 5 standard errors of the mean of log q - log p."""
    rng = np.random.default_rng(10)
    factor_q, factor_p = random_factor(rng, ())[0], random_factor(rng, ())[0]
    mu_q, mu_p = rng.standard_normal(n), rng.standard_normal(n)
    kl = full_gaussian.kl_full_gaussians_forward(mu_q, factor_q, mu_p, factor_p)[0]
    q = stats.multivariate_normal(mu_q, factor_q @ factor_q.T)
    p = stats.multivariate_normal(mu_p, factor_p @ factor_p.T)
    z = q.rvs(200_000, random_state=rng)
    terms = q.logpdf(z) - p.logpdf(z)
    assert abs(kl - terms.mean()) < 5 * terms.std() / np.sqrt(terms.size)


def test_kl_full_is_batched_zero_for_equal_gaussians_and_the_standard_normal_case():
    rng = np.random.default_rng(11)
    factor_q, factor_p = random_factor(rng, (6,))[0], random_factor(rng, (6,))[0]
    mu_q, mu_p = rng.standard_normal((6, n)), rng.standard_normal((6, n))
    kl = full_gaussian.kl_full_gaussians_forward(mu_q, factor_q, mu_p, factor_p)[0]
    assert kl.shape == (6,) and np.all(kl > 0)
    np.testing.assert_allclose(kl, [full_gaussian.kl_full_gaussians_forward(
        mu_q[i], factor_q[i], mu_p[i], factor_p[i])[0] for i in range(6)], rtol=1e-13)
    np.testing.assert_allclose(full_gaussian.kl_full_gaussians_forward(
        mu_q, factor_q, mu_q, factor_q)[0], 0.0, atol=1e-12)
    eye = np.broadcast_to(np.eye(n), factor_q.shape)
    np.testing.assert_allclose(
        full_gaussian.kl_full_gaussians_forward(mu_q, factor_q, np.zeros_like(mu_q), eye)[0],
        full_gaussian.kl_standard_normal_forward(mu_q, factor_q)[0], rtol=1e-12)


def test_the_seed_s_multivariate_kl_puts_the_wrong_inverse():
    """docs/full_covariance.md section 6: mu1 = 0, var1 = 1, mu2 = 1, var2 = 4.  The boxed
    formula (Sigma_2^-1 in the quadratic term) gives 0.4431, the seed's (Sigma_1^-1)
    0.8181; 10^6 draws of log q - log p from q agree with the first within 5 standard
    errors (about 0.0006) and miss the second by more than 500."""
    kl = full_gaussian.kl_full_gaussians_forward(np.zeros(1), np.eye(1), np.ones(1),
                                                 2 * np.eye(1))[0]
    seed_formula = 0.5 * (1 / 4 + 1 ** 2 / 1 - 1 + np.log(4 / 1))
    assert round(float(kl), 4) == 0.4431 and round(seed_formula, 4) == 0.8181
    z = np.random.default_rng(0).normal(0.0, 1.0, 10 ** 6)
    terms = stats.norm.logpdf(z, 0, 1) - stats.norm.logpdf(z, 1, 2)
    se = terms.std() / np.sqrt(terms.size)
    assert abs(terms.mean() - kl) < 5 * se and abs(terms.mean() - seed_formula) > 500 * se


def test_the_factor_gradients_are_the_covariance_gradients_of_kl_md():
    """d/dL = tril(2 G_Sigma L) for a symmetric covariance gradient G_Sigma (dSigma =
    dL L^T + L dL^T), with kl.md's G_Sigma1 = (P - Sigma1^-1)/2 and
    G_Sigma2 = (P - P (Sigma1 + d d^T) P)/2, P = Sigma2^-1, d = mu1 - mu2."""
    rng = np.random.default_rng(14)
    factor1, factor2 = random_factor(rng, ())[0], random_factor(rng, ())[0]
    mu1, mu2 = rng.standard_normal(n), rng.standard_normal(n)
    cache = full_gaussian.kl_full_gaussians_forward(mu1, factor1, mu2, factor2)[1]
    _, dfactor1, _, dfactor2 = full_gaussian.kl_full_gaussians_backward(np.float64(1.0), cache)
    sigma1, precision2, d = factor1 @ factor1.T, np.linalg.inv(factor2 @ factor2.T), mu1 - mu2
    g1 = 0.5 * (precision2 - np.linalg.inv(sigma1))
    g2 = 0.5 * (precision2 - precision2 @ (sigma1 + np.outer(d, d)) @ precision2)
    np.testing.assert_allclose(dfactor1, np.tril(2 * g1 @ factor1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dfactor2, np.tril(2 * g2 @ factor2), rtol=1e-10, atol=1e-12)


def test_kl_full_rejects_a_factor_without_a_positive_diagonal():
    with pytest.raises(ValueError, match="factor2 must be lower triangular with a positive"):
        full_gaussian.kl_full_gaussians_forward(np.zeros(2), np.eye(2), np.zeros(2),
                                                np.array([[1.0, 0.0], [2.0, -1.0]]))


# ---------------------------------------------------------------- the model --

def small_model(seed=0, **kwargs):
    model = FullCovarianceVAE(5, (4,), 3, activation="tanh", dtype=np.float64, seed=seed, **kwargs)
    model.params.flat[:] += 0.3 * np.random.default_rng(seed).standard_normal(model.params.flat.size)
    return model


def test_encoder_outputs_mu_log_diag_and_the_strictly_lower_entries():
    model = FullCovarianceVAE(10, (6,), 3, dtype=np.float64)
    assert model.params["encoder.1.W"].shape == (6, 3 + 3 + 3)
    mu, factor = model.encode_factor(np.zeros((2, 10)))
    assert mu.shape == (2, 3) and factor.shape == (2, 3, 3)
    assert np.all(np.triu(factor, 1) == 0) and np.all(np.diagonal(factor, axis1=1, axis2=2) > 0)


def test_the_posterior_starts_diagonal():
    """At initialisation the strictly-lower outputs are zero for every input (their
    weights and biases are), so L is diagonal; training then moves them."""
    model = FullCovarianceVAE(10, (6,), 4, dtype=np.float64, seed=3)
    x = np.random.default_rng(0).uniform(0, 1, (5, 10))
    mu, factor = model.encode_factor(x)
    assert np.all(np.tril(factor, -1) == 0) and np.all(np.diagonal(factor, axis1=1, axis2=2) != 1)
    grads = model.loss_and_grads(x, rng=np.random.default_rng(1), objective="iwae", k=3)[1]
    assert np.all(np.any(grads["encoder.1.W"][:, 8:] != 0, axis=0))      # every lower entry learns


@pytest.mark.parametrize("objective", ["elbo", "elbo-mc", "iwae"])
def test_model_gradients_for_each_objective(objective):
    model = small_model()
    rng = np.random.default_rng(12)
    x, eps = rng.uniform(0, 1, (3, 5)), rng.standard_normal((2, 3, 3))

    def loss():
        return model.loss_and_grads(x, eps=eps, objective=objective, k=2)[0]

    grads = model.loss_and_grads(x, eps=eps, objective=objective, k=2)[1]
    assert relative_error(grads.flat, numerical_gradient(loss, model.params.flat)) < TOL


def test_wake_sleep_is_refused_naming_the_objectives():
    model = small_model()
    with pytest.raises(ValueError, match="FullCovarianceVAE trains with the objectives"):
        model.loss_and_grads(np.full((2, 5), 0.5), rng=np.random.default_rng(0),
                             objective="wake-sleep")


def test_log_likelihood_is_exact_with_the_exact_posterior():
    """Linear-Gaussian model p(z) = N(0, I), p(x|z) = N(z W + b, s2 I): the posterior
    N((x - b) W^T S / s2, S), S = (I + W W^T / s2)^-1, has a full covariance, which
    this encoder can hold exactly; then every importance weight is p(x), so the
    estimate with k = 3 and the sampled bounds equal scipy's log N(x; b, W^T W + s2 I)
    to rounding.  (With a wrong log q or factor the weights would vary with eps.)"""
    rng = np.random.default_rng(13)
    d, latent, s2 = 5, 3, 0.3
    w, b = rng.standard_normal((latent, d)), rng.standard_normal(d)
    model = FullCovarianceVAE(d, (), latent, likelihood="gaussian", obs_var=s2, dtype=np.float64)
    model.params["decoder.0.W"][...], model.params["decoder.0.b"][...] = w, b
    cov = np.linalg.inv(np.eye(latent) + w @ w.T / s2)
    a = w.T @ cov / s2                                                   # (D, L)
    chol = np.linalg.cholesky(cov)
    rows, cols = np.tril_indices(latent, -1)
    model.params["encoder.0.W"][...] = 0
    model.params["encoder.0.W"][:, :latent] = a
    model.params["encoder.0.b"][...] = np.concatenate([-b @ a, np.log(np.diag(chol)),
                                                       chol[rows, cols]])
    x = stats.multivariate_normal(b, w.T @ w + s2 * np.eye(d)).rvs(4, random_state=rng)
    exact = stats.multivariate_normal(b, w.T @ w + s2 * np.eye(d)).logpdf(x)
    for estimate in (importance_weighted_log_likelihood(model, x, 3, rng),
                     importance_weighted_log_likelihood_fast(model, x, 3, rng)):
        np.testing.assert_allclose(estimate, exact, rtol=1e-10)
    eps = rng.standard_normal((2, 4, latent))
    np.testing.assert_allclose(bound(model, x, "elbo-mc", eps), exact, rtol=1e-10)
    np.testing.assert_allclose(bound(model, x, "iwae", eps), exact, rtol=1e-10)


def test_save_and_load_round_trip(tmp_path):
    model = small_model(seed=3)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert type(loaded) is FullCovarianceVAE and loaded.config() == model.config()
    np.testing.assert_array_equal(loaded.params.flat, model.params.flat)
    x = np.full((2, 5), 0.25)
    eps = np.random.default_rng(0).standard_normal((2, 3))
    assert loaded.loss_and_grads(x, eps=eps)[0] == model.loss_and_grads(x, eps=eps)[0]
    assert loaded.kind == "vae-full-covariance" != VAE.kind


# ------------------------------------------------------ training: --posterior --

def test_posterior_is_a_setting_that_builds_the_model_and_refuses_wake_sleep():
    assert RunConfig().posterior == "diagonal"
    assert type(build_model(RunConfig(posterior="full"), 12)) is FullCovarianceVAE
    assert type(build_model(RunConfig(), 12)) is VAE
    with pytest.raises(RunError, match="--posterior full does not train with --objective wake-sleep"):
        RunConfig(posterior="full", objective="wake-sleep")
    with pytest.raises(RunError, match="--posterior"):
        RunConfig(posterior="diag")
    older = {k: v for k, v in RunConfig().to_dict().items() if k != "posterior"}
    assert resume_differences(older, RunConfig()) == []          # runs from before the flag


def test_a_full_covariance_run_trains_and_resume_refuses_another_posterior(tmp_path):
    data = synthetic()
    metrics = quiet_fit(tiny_config(tmp_path, epochs=1, posterior="full", objective="iwae", k=2,
                                    kl_warmup=0), data)
    assert metrics["model"]["kind"] == "vae-full-covariance"
    assert np.isfinite(metrics["final"]["test_nll"]) and metrics["final"]["active_units"] >= 0
    with pytest.raises(RunError, match="--posterior \\(saved 'full', now 'diagonal'\\)"):
        quiet_fit(tiny_config(tmp_path, epochs=2, objective="iwae", k=2, kl_warmup=0), data,
                  resume=True)
    resumed = quiet_fit(tiny_config(tmp_path, epochs=2, posterior="full", objective="iwae", k=2,
                                    kl_warmup=0), data, resume=True)
    assert len(resumed["epochs"]) == 2
