"""collapse.py: the average KL split into I_q(x; z) and KL(q(z) || p(z)), checked on
posteriors whose parts are known in closed form (docs/collapse.md section 4)."""

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.collapse import (aggregate_log_density, kl_decomposition, kl_per_dimension,
                               pairwise_log_density, pairwise_log_density_fast,
                               posterior_parameters)
from numpyvae.ops.gaussian import gaussian_log_density_forward, kl_standard_normal_forward

# How far an estimate may sit from its closed-form value: this many standard errors
# (the estimates are deterministic given their seeds; 4 se is a 6e-5 two-sided chance)
SE_TOLERANCE = 4.0


def linear_gaussian(n, gains, noise_std, seed=0):
    """Posteriors of the toy x ~ N(0, I), q(z|x) = N(gains * x, diag(noise_std^2)),
    for n draws of x: (mu, logvar), (n, L) each.  In closed form (population values):

        I(x; z) = 1/2 sum_l log(1 + gains_l^2 / noise_std_l^2)
        q(z) = N(0, diag(gains^2 + noise_std^2)),  KL(q(z) || N(0, I)) = 1/2 sum_l (v - 1 - log v)
    """
    x = np.random.default_rng(seed).standard_normal((n, len(gains)))
    mu = np.asarray(gains) * x
    logvar = np.broadcast_to(np.log(np.square(noise_std)), mu.shape).copy()
    return mu, logvar


def test_linear_gaussian_mutual_information_within_its_standard_error():
    gains, noise_std = np.array([1.0, 2.0, 0.3]), np.array([1.0, 0.5, 1.0])
    mu, logvar = linear_gaussian(4000, gains, noise_std)
    result = kl_decomposition(mu, logvar, np.random.default_rng(1), n_samples=4000)
    mi = 0.5 * np.sum(np.log1p(gains ** 2 / noise_std ** 2))
    v = gains ** 2 + noise_std ** 2
    aggregate_kl = 0.5 * np.sum(v - 1 - np.log(v))
    assert 0.005 < result.mi_se < 0.05 and 0.005 < result.aggregate_kl_se < 0.1
    assert abs(result.mutual_information - mi) < SE_TOLERANCE * result.mi_se
    assert abs(result.aggregate_kl - aggregate_kl) < SE_TOLERANCE * result.aggregate_kl_se
    # the two parts add up to the average KL (their sum is a sampled KL: same error scale)
    total_se = np.hypot(result.mi_se, result.aggregate_kl_se)
    assert abs(result.mutual_information + result.aggregate_kl - result.average_kl) \
        < SE_TOLERANCE * total_se
    # the leave-one-out estimate lies above the leave-one-in one (on average; see the doc)
    assert result.mutual_information <= result.leave_one_out_information


def test_posterior_that_ignores_x_has_zero_information():
    """q(z|x) the same Gaussian for every x: q(z) = q(z|x), so I = 0 exactly, and
    KL(q(z) || p(z)) is the closed-form KL of that one Gaussian."""
    mu = np.tile([[0.3, -1.0]], (50, 1))
    logvar = np.tile([[-0.5, 0.2]], (50, 1))
    result = kl_decomposition(mu, logvar, np.random.default_rng(0), n_samples=50)
    assert abs(result.mutual_information) < 1e-12
    assert abs(result.leave_one_out_information) < 1e-12
    kl = kl_standard_normal_forward(mu[:1], logvar[:1])[0][0]
    assert result.average_kl == pytest.approx(kl, rel=1e-12)
    assert abs(result.aggregate_kl - kl) < SE_TOLERANCE * result.aggregate_kl_se


def test_separated_posteriors_reach_log_n():
    """Posteriors far apart: each z names its example, I = log N (the most N examples hold)."""
    mu = 100.0 * np.arange(20)[:, None] * np.ones((1, 2))
    logvar = np.zeros((20, 2))
    result = kl_decomposition(mu, logvar, np.random.default_rng(0), n_samples=20)
    assert result.mutual_information == pytest.approx(np.log(20), abs=1e-9)
    assert result.mi_se < 1e-9
    assert result.leave_one_out_information > 100


def test_pairwise_log_density_fast_equals_the_textbook_form():
    rng = np.random.default_rng(0)
    z, mu = rng.standard_normal((7, 3)), 2 * rng.standard_normal((11, 3))
    logvar = rng.uniform(-6, 2, (11, 3))
    textbook = pairwise_log_density(z, mu, logvar)
    assert textbook.shape == (7, 11)
    assert textbook[2, 5] == pytest.approx(gaussian_log_density_forward(z[2], mu[5], logvar[5])[0],
                                          rel=1e-12)
    np.testing.assert_allclose(pairwise_log_density_fast(z, mu, logvar), textbook, rtol=1e-10,
                               atol=1e-9)


def test_aggregate_log_density_is_the_mixture_in_any_chunks():
    rng = np.random.default_rng(0)
    z, mu, logvar = rng.standard_normal((9, 2)), rng.standard_normal((5, 2)), rng.normal(0, .3, (5, 2))
    mixture = np.log(np.mean(np.exp(pairwise_log_density(z, mu, logvar)), axis=1))
    np.testing.assert_allclose(aggregate_log_density(z, mu, logvar), mixture, rtol=1e-12)
    np.testing.assert_allclose(aggregate_log_density(z, mu, logvar, chunk_elements=7), mixture,
                               rtol=1e-12)
    leave_out = np.arange(9) % 5
    own_removed = np.exp(pairwise_log_density(z, mu, logvar))
    own_removed[np.arange(9), leave_out] = 0
    np.testing.assert_allclose(aggregate_log_density(z, mu, logvar, leave_out, chunk_elements=7),
                               np.log(own_removed.sum(axis=1) / 4), rtol=1e-12)


def test_model_parts_sum_to_the_kl_term():
    model = VAE(12, (8,), 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(0).random((25, 12))
    mu, logvar = posterior_parameters(model, x, batch_size=7)
    mu_all, logvar_all = model.encode(x)
    np.testing.assert_allclose(mu, mu_all, rtol=1e-12, atol=1e-14)   # batches round apart
    np.testing.assert_allclose(logvar, logvar_all, rtol=1e-12, atol=1e-14)
    per_dim = kl_per_dimension(model, x, batch_size=7)
    assert per_dim.shape == (3,)
    assert per_dim.sum() == pytest.approx(np.mean(kl_standard_normal_forward(mu, logvar)[0]),
                                          rel=1e-12)


@pytest.mark.parametrize("mu, logvar, match", [
    (np.zeros((1, 2)), np.zeros((1, 2)), "N >= 2"),
    (np.zeros((3, 2)), np.zeros((3, 1)), "one shape"),
    (np.full((3, 2), np.nan), np.zeros((3, 2)), "finite"),
])
def test_bad_posteriors_are_named(mu, logvar, match):
    with pytest.raises(ValueError, match=match):
        kl_decomposition(mu, logvar, np.random.default_rng(0))


def test_n_samples_is_checked():
    with pytest.raises(ValueError, match="n_samples"):
        kl_decomposition(np.zeros((3, 2)), np.zeros((3, 2)), np.random.default_rng(0), n_samples=0)
