"""Decoders p(x|z): each log-likelihood's value (against scipy or a hand
formula) and its gradient w.r.t. the decoder output (central differences)."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from gradcheck_helpers import TOL, elementwise_errors
from numpyvae.gradcheck import numerical_gradient_array, relative_error
from numpyvae.ops.likelihoods import (BernoulliLikelihood, BernoulliLikelihoodFast, GaussianLikelihood,
                                  SigmoidGaussianLikelihood, make_likelihood)


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
    assert isinstance(make_likelihood("gaussian-sigmoid", "learned"), SigmoidGaussianLikelihood)
    with pytest.raises(ValueError, match="unknown likelihood 'poisson'.*'gaussian-sigmoid'"):
        make_likelihood("poisson")


@pytest.mark.parametrize("obs_var, error", [
    (0, ValueError), (-1.0, ValueError), (np.nan, ValueError), (np.inf, ValueError),
    ("fixed", ValueError), ("Learned", ValueError), (None, TypeError), ([1.0], TypeError)])
@pytest.mark.parametrize("name", ["gaussian", "gaussian-sigmoid"])
def test_gaussian_rejects_bad_obs_var(name, obs_var, error):
    with pytest.raises(error, match="obs_var must be a"):
        make_likelihood(name, obs_var)


# ------------------------------------------- Gaussian with sigmoid means --

def sigmoid_gaussian_case(obs_var, rng, low=-4, high=4):
    """x in (0, 1) (4, 6) and a decoder output [a, logvar] (learned) or a (fixed)."""
    x, a = rng.random((4, 6)), rng.uniform(low, high, (4, 6))
    out = np.concatenate([a, rng.uniform(-3, 1, (4, 6))], axis=1) if obs_var == "learned" else a
    return make_likelihood("gaussian-sigmoid", obs_var), x, out


@pytest.mark.parametrize("obs_var", ["learned", 0.05])
def test_sigmoid_gaussian_log_prob_matches_scipy(obs_var):
    rng = np.random.default_rng(7)
    lik, x, out = sigmoid_gaussian_case(obs_var, rng)
    assert isinstance(lik, SigmoidGaussianLikelihood) and lik.name == "gaussian-sigmoid"
    mean = expit(out[:, :6])
    std = np.exp(out[:, 6:] / 2) if obs_var == "learned" else np.sqrt(obs_var)
    np.testing.assert_allclose(lik.log_prob_forward(x, out)[0],
                               stats.norm.logpdf(x, mean, std).sum(axis=1), rtol=1e-13)
    np.testing.assert_allclose(lik.mean(out), mean, rtol=1e-15)
    assert np.all((lik.mean(out) > 0) & (lik.mean(out) < 1))
    assert lik.n_outputs(6) == (12 if obs_var == "learned" else 6)


@pytest.mark.parametrize("obs_var", ["learned", 0.05])
def test_sigmoid_gaussian_gradient_matches_numerical(obs_var):
    """Gradient w.r.t. [a, logvar] (or a)."""
    rng = np.random.default_rng(8)
    lik, x, out = sigmoid_gaussian_case(obs_var, rng)
    assert decoder_gradient_error(lik, x, out, rng) <= TOL


@pytest.mark.parametrize("obs_var", ["learned", 0.05])
@pytest.mark.parametrize("low, high", [(-12, -6), (5, 8)], ids=["low", "high"])
def test_sigmoid_gaussian_gradient_where_the_sigmoid_saturates(obs_var, low, high):
    """da = dmean * m (1 - m) is down to ~6e-6 * dmean here: checked one element at a
    time, so that the sum's rounding does not drown it (gradcheck_helpers).  The high
    side stops at a = 8: there m = 1 - 3e-4 is stored to 1.1e-16 absolute, and a
    central difference's change of m, 2h m (1 - m) = 7e-9, still resolves to 2e-8."""
    rng = np.random.default_rng(8)
    lik, x, out = sigmoid_gaussian_case(obs_var, rng, low, high)
    dlogp = rng.standard_normal(4)
    dout = lik.log_prob_backward(dlogp, lik.log_prob_forward(x, out)[1])
    if obs_var == "learned":
        def value(x, a, logvar):
            return lik.log_prob_forward(x, np.concatenate([a, logvar], axis=1))[0]
        inputs, analytic, wrt = [x, out[:, :6], out[:, 6:]], [dout[:, :6], dout[:, 6:]], [1, 2]
    else:
        def value(x, a):
            return lik.log_prob_forward(x, a)[0]
        inputs, analytic, wrt = [x, out], [dout], [1]
    assert elementwise_errors(value, inputs, analytic, wrt, dlogp) <= TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_gaussian_samples_have_the_right_moments(dtype):
    """Many draws for one z: per-pixel mean sigmoid(a) and variance exp(logvar),
    within 5 standard errors, in the decoder's dtype, reproducible from the seed."""
    lik = make_likelihood("gaussian-sigmoid", "learned")
    a, logvar = np.array([-2.0, 0.0, 3.0]), np.array([-4.0, -1.0, 0.5])
    n = 200_000
    out = np.tile(np.concatenate([a, logvar]), (n, 1)).astype(dtype)
    x = lik.sample(out, np.random.default_rng(9))
    assert x.shape == (n, 3) and x.dtype == dtype
    var = np.exp(logvar)
    assert np.all(np.abs(x.mean(axis=0) - expit(a)) < 5 * np.sqrt(var / n))
    assert np.all(np.abs(x.var(axis=0) / var - 1) < 5 * np.sqrt(2 / n))
    np.testing.assert_array_equal(x, lik.sample(out, np.random.default_rng(9)))
    fixed = make_likelihood("gaussian-sigmoid", 0.25).sample(np.zeros((n, 1), dtype),
                                                            np.random.default_rng(10))
    assert abs(fixed.mean() - 0.5) < 5 * 0.5 / np.sqrt(n) and abs(fixed.std() - 0.5) < 0.01


def test_sigmoid_gaussian_model_saves_and_loads(tmp_path):
    from numpyvae import VAE

    model = VAE(560, (7,), 2, "gaussian-sigmoid", "learned", "tanh", np.float64, 3)
    assert model.params["decoder.1.W"].shape == (7, 1120)
    model.save(tmp_path / "frey.npz")
    loaded = VAE.load(tmp_path / "frey.npz")
    assert loaded.likelihood.name == "gaussian-sigmoid" and loaded.likelihood.learned
    z = np.random.default_rng(0).standard_normal((3, 2))
    np.testing.assert_array_equal(loaded.decode(z), model.decode(z))
    assert np.all((model.decode(z) > 0) & (model.decode(z) < 1))
