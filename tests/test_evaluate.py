"""Evaluation: the importance-weighted log p(x) against closed forms, chunking, ELBO, active units.

The reference for log p(x) is a linear-Gaussian VAE (hidden_dims=()): the
decoder is out = z @ W + b with x ~ N(out, s2 I) and z ~ N(0, I), so

    p(x)   = N(x; b, W^T W + s2 I)                        (scipy.stats.multivariate_normal)
    p(z|x) = N(z; (x - b) W^T S / s2, S),  S = (I + W W^T / s2)^-1

and the encoder, one linear layer too, can be set to any Gaussian whose mean
is linear in x, including the exact posterior when S is diagonal.
"""

import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from numpyvae import VAE, Autoencoder
from numpyvae.util.blas import limited_blas_threads
from numpyvae.evaluate import (chunk_sizes, active_units, elbo_terms, evaluate_bound, evaluate_elbo,
                               importance_weighted_log_likelihood,
                               importance_weighted_log_likelihood_fast)
from numpyvae.ops.gaussian import gaussian_log_density_forward, standard_normal_log_density_forward
from numpyvae.util.validate import NonFiniteError

D, L, S2 = 6, 3, 0.25


def linear_gaussian_vae(W, b, s2=S2):
    """A float64 VAE whose decoder is exactly out = z @ W + b, W (L, D), b (D,)."""
    model = VAE(W.shape[1], (), W.shape[0], likelihood="gaussian", obs_var=s2, dtype=np.float64)
    model.params["decoder.0.W"][...] = W
    model.params["decoder.0.b"][...] = b
    return model


def set_linear_encoder(model, A, c, logvar):
    """q(z|x) = N(x @ A + c, diag(exp(logvar))): A (D, L), c (L,), logvar (L,)."""
    L_ = model.latent_dim
    model.params["encoder.0.W"][...] = 0
    model.params["encoder.0.W"][:, :L_] = A
    model.params["encoder.0.b"][:L_] = c
    model.params["encoder.0.b"][L_:] = logvar


def exact_posterior(W, b, s2=S2):
    """(A, c, S): posterior mean x @ A + c and covariance S of the linear-Gaussian model."""
    S = np.linalg.inv(np.eye(W.shape[0]) + W @ W.T / s2)
    A = W.T @ S / s2                                    # (D, L)
    return A, -b @ A, S


def marginal(W, b, s2=S2):
    return multivariate_normal(b, W.T @ W + s2 * np.eye(W.shape[1]))


def reference_iwll(model, x, k, seed, eps_dtype=None):
    """log p(x) one example and one sample at a time, log q from z (not eps),
    eps from the documented canonical stream: (N, k, L) in C order, drawn in
    ``eps_dtype`` (default the model's) and used in the model's dtype."""
    eps_all = np.random.default_rng(seed).standard_normal(
        (x.shape[0], k, model.latent_dim), dtype=eps_dtype or model.dtype).astype(model.dtype)
    result = []
    for n in range(x.shape[0]):
        mu, logvar = model.encode(x[n:n + 1])
        logw = []
        for j in range(k):
            z = mu + np.exp(logvar / 2) * eps_all[n, j]
            out = model.decoder.forward(model.params, z)[0]
            logw.append(model.likelihood.log_prob_forward(x[n:n + 1], out)[0][0]
                        + standard_normal_log_density_forward(z)[0][0]
                        - gaussian_log_density_forward(z, mu, logvar)[0][0])
        result.append(logsumexp(logw) - np.log(k))
    return np.array(result)


def small_model(likelihood="bernoulli", obs_var=1.0, dtype=np.float64):
    return VAE(12, (8,), 3, likelihood=likelihood, obs_var=obs_var, dtype=dtype, seed=1)


def small_data(model, n=7, seed=0):
    rng = np.random.default_rng(seed)
    if model.likelihood.name == "bernoulli":
        return (rng.random((n, model.input_dim)) < 0.4).astype(model.dtype)
    return rng.standard_normal((n, model.input_dim)).astype(model.dtype)


# ---------------------------------------------------- exact answers known --

def test_exact_posterior_gives_log_px_for_every_k():
    """With q(z|x) = p(z|x) every weight p(x, z) / q(z|x) equals p(x): zero variance."""
    rng = np.random.default_rng(0)
    # orthogonal rows make W W^T diagonal, so the exact posterior covariance is diagonal
    Q = np.linalg.qr(rng.standard_normal((D, L)))[0].T             # (L, D), Q Q^T = I
    W = np.array([0.5, 1.5, 3.0])[:, None] * Q
    b = rng.standard_normal(D)
    model = linear_gaussian_vae(W, b)
    A, c, S = exact_posterior(W, b)
    np.testing.assert_allclose(S, np.diag(np.diag(S)), atol=1e-14)
    set_linear_encoder(model, A, c, np.log(np.diag(S)))
    x = marginal(W, b).rvs(20, random_state=1)
    logp = marginal(W, b).logpdf(x)
    for k in (1, 7, 300):
        est = importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(k))
        np.testing.assert_allclose(est, logp, rtol=0, atol=1e-10)


def test_converges_to_closed_form_log_px():
    """An imperfect q (mean shrunk by 0.8, variance doubled, the true posterior
    correlated): the ELBO is ~2 nats below log p(x); the IW estimate's error
    shrinks with k and is < 0.05 nats (mean abs over 100 examples) at k = 5000."""
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((L, D)), rng.standard_normal(D)
    model = linear_gaussian_vae(W, b)
    A, c, S = exact_posterior(W, b)
    set_linear_encoder(model, 0.8 * A, 0.8 * c, np.log(2.0 * np.diag(S)))
    x = marginal(W, b).rvs(100, random_state=1)
    logp = marginal(W, b).logpdf(x)

    errors = {}
    for k in (1, 100, 5000):
        est = importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(k))
        assert est.shape == (100,) and est.dtype == np.float64
        errors[k] = np.mean(np.abs(logp - est))
        # a lower bound in expectation: the mean is not above log p(x) beyond noise
        assert np.mean(logp - est) > -0.03, (k, np.mean(logp - est))
        if k == 5000:
            mean_elbo = np.mean(np.subtract(*elbo_terms(model, x, np.random.default_rng(7))))
            assert np.mean(est) > mean_elbo + 1.0, (np.mean(est), mean_elbo)
    print("mean |log p(x) - IW_k| by k:", errors)
    assert errors[1] > errors[100] > errors[5000]
    assert errors[1] > 1.0                      # the test is not trivially easy
    assert errors[5000] < 0.05


@pytest.mark.parametrize("likelihood,obs_var", [("bernoulli", 1.0), ("gaussian", 0.3),
                                                ("gaussian", "learned")])
def test_matches_per_sample_loop_for_every_likelihood(likelihood, obs_var):
    model = small_model(likelihood, obs_var)
    x = small_data(model)
    est = importance_weighted_log_likelihood_fast(model, x, 5, np.random.default_rng(3))
    np.testing.assert_allclose(est, reference_iwll(model, x, 5, seed=3), rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("likelihood, obs_var", [("bernoulli", 1.0), ("gaussian", 0.5),
                                                  ("gaussian", "learned")])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_fast_form_gives_the_textbook_numbers(likelihood, obs_var, dtype):
    """importance_weighted_log_likelihood_fast (chunked, threaded, log_weights_fast,
    logsumexp_fast) against the textbook form, the same eps: equal to rounding."""
    model = VAE(12, (7,), 3, likelihood=likelihood, obs_var=obs_var, dtype=dtype, seed=1)
    x = np.random.default_rng(8).random((5, 12)).astype(dtype)
    textbook = importance_weighted_log_likelihood(model, x, 40, np.random.default_rng(4))
    for batch_elements, workers in ((2 ** 20, 1), (60, 1), (60, 2)):
        fast = importance_weighted_log_likelihood_fast(model, x, 40, np.random.default_rng(4),
                                                       batch_elements, workers)
        tol = 1e-12 if dtype == np.float64 else 1e-5
        np.testing.assert_allclose(fast, textbook, rtol=tol, atol=tol)


# --------------------------------------------------------------- chunking --

def test_chunk_shapes_cover_both_regimes():
    model = small_model()                       # widest layer: 12
    assert chunk_sizes(model, 10, 7, 1) == (1, 1)              # one sample of one example
    assert chunk_sizes(model, 10, 7, 12 * 4) == (4, 1)         # k split in 4 + 4 + 2 (ceil 10/3)
    assert chunk_sizes(model, 10, 7, 12 * 25) == (10, 2)       # all k, 2 examples
    assert chunk_sizes(model, 10, 7, 2 ** 20) == (10, 7)       # everything at once


@pytest.mark.parametrize("batch_elements", [1, 12 * 4, 12 * 25, 2 ** 20])
def test_chunking_does_not_change_the_estimate(batch_elements):
    model = small_model()
    x = small_data(model)
    est = importance_weighted_log_likelihood_fast(model, x, 10, np.random.default_rng(5),
                                             batch_elements)
    np.testing.assert_allclose(est, reference_iwll(model, x, 10, seed=5), rtol=1e-12, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(1, 9), batch_elements=st.integers(1, 300))
def test_chunking_invariance_property(n, k, batch_elements):
    model = small_model("gaussian", "learned")   # widest layer: 2D = 24
    x = small_data(model, n)
    a = importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(0), batch_elements)
    b = importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(0), 2 ** 20)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(1, 9), batch_elements=st.integers(1, 300),
       workers=st.integers(2, 4))
def test_threads_give_the_serial_numbers_bit_for_bit(n, k, batch_elements, workers):
    """workers > 1 computes the same pieces, from the same eps stream, in
    other threads: the estimate is identical, not just close."""
    model = small_model("gaussian", "learned")
    x = small_data(model, n)
    with limited_blas_threads(1):
        serial = importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(0),
                                                    batch_elements)
        threaded = importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(0),
                                                      batch_elements, workers=workers)
    np.testing.assert_array_equal(threaded, serial)


def test_threads_on_the_default_model_give_the_serial_numbers():
    """The default MNIST model's shapes (784-400-20, float32, k = 1000: one
    example per piece, the run's final evaluation), serial against two threads."""
    model = VAE(784, (400,), 20, dtype=np.float32, seed=0)
    x = (np.random.default_rng(1).random((6, 784)) < 0.3).astype(np.float32)
    with limited_blas_threads(1):
        serial = importance_weighted_log_likelihood_fast(model, x, 1000, np.random.default_rng(2))
        threaded = importance_weighted_log_likelihood_fast(model, x, 1000, np.random.default_rng(2),
                                                      workers=2)
    np.testing.assert_array_equal(threaded, serial)
    assert np.all(np.isfinite(serial)) and np.all(serial < 0)


def _peak_bytes(model, x, k, batch_elements):
    tracemalloc.start()
    try:
        importance_weighted_log_likelihood_fast(model, x, k, np.random.default_rng(0), batch_elements)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_batch_elements_not_k():
    """A naive (k, N, D) evaluation of k = 4000 samples would hold 4000*20*50*8 B = 32 MB
    per temporary; with batch_elements = 2000 every heavy temporary is 2000
    floats (16 kB) and only the (k, 1) log-weight table grows with k."""
    model = VAE(50, (30,), 4, dtype=np.float64, seed=0)
    x = small_data(model, 20)
    batch_elements = 2000
    peak_small = _peak_bytes(model, x, 400, batch_elements)
    peak_large = _peak_bytes(model, x, 4000, batch_elements)
    itemsize = 8
    # growth from k = 400 to 4000: the log-weight table and logsumexp's k-sized temporaries
    assert peak_large - peak_small < 8 * (4000 - 400) * itemsize, (peak_small, peak_large)
    assert peak_large < 20 * batch_elements * itemsize + 8 * 4000 * itemsize, peak_large


# ---------------------------------------------------- seeds and precision --

def test_same_seed_same_result_other_seed_differs():
    model = small_model()
    x = small_data(model)
    a = importance_weighted_log_likelihood_fast(model, x, 20, np.random.default_rng(11))
    b = importance_weighted_log_likelihood_fast(model, x, 20, np.random.default_rng(11))
    c = importance_weighted_log_likelihood_fast(model, x, 20, np.random.default_rng(12))
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)


def test_float32_model_runs_float32_decoder_returns_float64():
    model = small_model(dtype=np.float32)
    x = small_data(model)
    calls = []
    decoder_forward = model.decoder.forward

    def spy(params, z):
        out, cache = decoder_forward(params, z)
        calls.append((z.dtype, z.shape, out.dtype, out.shape))
        return out, cache

    model.decoder.forward = spy
    est = importance_weighted_log_likelihood_fast(model, x, 10, np.random.default_rng(0))
    assert est.dtype == np.float64 and est.shape == (7,)
    # one batched decoder pass for all samples: k * n rows of z, not k passes
    assert calls == [(np.float32, (70, 3), np.float32, (70, 12))]

    # the same weights and the same (float32) eps, all in float64: only rounding differs
    model64 = small_model(dtype=np.float64)
    model64.params.flat[...] = model.params.flat
    ref = reference_iwll(model64, x.astype(np.float64), 10, seed=0, eps_dtype=np.float32)
    np.testing.assert_allclose(est, ref, rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------- ELBO --

def test_elbo_and_evaluate_elbo_match_the_training_loss():
    model = small_model()
    x = small_data(model, 10)
    (loss, recon, kl), _ = model.loss_terms_and_grads(x, rng=np.random.default_rng(2))
    for batch_size in (10, 3, 1):              # eps is drawn in the same order in batches
        terms = evaluate_elbo(model, x, np.random.default_rng(2), batch_size=batch_size)
        assert terms["loss"] == pytest.approx(loss, rel=1e-12)
        assert terms["recon"] == pytest.approx(recon, rel=1e-12)
        assert terms["kl"] == pytest.approx(kl, rel=1e-12)
        assert terms["loss"] == pytest.approx(terms["recon"] + terms["kl"], rel=1e-15)
    logpx, kl_n = model.elbo_terms(x, np.random.default_rng(2))
    logpx_batched, kl_batched = elbo_terms(model, x, np.random.default_rng(2), batch_size=4)
    assert logpx_batched.shape == kl_batched.shape == (10,)
    assert logpx_batched.dtype == kl_batched.dtype == np.float64
    np.testing.assert_allclose(logpx_batched, logpx, rtol=1e-14)
    np.testing.assert_allclose(kl_batched, kl_n, rtol=1e-14)
    assert -(logpx_batched - kl_batched).mean() == pytest.approx(loss, rel=1e-12)


# ----------------------------------------------------------- active units --

def test_active_units_counts_the_dims_whose_mean_varies():
    """A linear encoder mu = x @ A + c: zeroed columns of A give a constant
    mu_u (variance 0, inactive); the others have variance ~ 1."""
    model = VAE(D, (), 5, likelihood="gaussian", dtype=np.float64)
    rng = np.random.default_rng(0)
    A = rng.standard_normal((D, 5)) / np.sqrt(D)
    A[:, [1, 3]] = 0
    set_linear_encoder(model, A, rng.standard_normal(5), np.zeros(5))
    x = rng.standard_normal((500, D))
    count, variances = active_units(model, x, batch_size=64)     # 8 batches, the last partial
    assert count == 3
    assert variances.shape == (5,) and variances.dtype == np.float64
    assert np.all(variances[[1, 3]] < 1e-25)       # 0 up to the rounding of batch means
    np.testing.assert_allclose(variances, np.var(model.encode(x)[0], axis=0),
                               rtol=1e-12, atol=1e-20)
    assert np.all(variances[[0, 2, 4]] > 0.1)
    # the threshold is strict and configurable
    top = float(variances.max())
    assert active_units(model, x, threshold=top, batch_size=64)[0] == 0
    assert active_units(model, x, threshold=np.nextafter(top, 0), batch_size=64)[0] == 1


# -------------------------------------------------------------- bad input --

BAD_CALLS = [  # (call(model, x, rng, autoencoder), error, message)
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 5), TypeError,
     "rng must be a numpy.random.Generator"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 5, rng=0), TypeError,
     "rng must be a numpy.random.Generator"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 5, np.random.RandomState(0)),
     TypeError, r"rng must be a numpy.random.Generator .*\(RandomState\)"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 0, r), ValueError,
     "eval_k must be an integer >= 1, got 0"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, -3, r), ValueError,
     "eval_k must be an integer >= 1, got -3"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 2.5, r), TypeError,
     "eval_k must be an integer, got 2.5"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, True, r), TypeError,
     "eval_k must be an integer, got True"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, "5", r), TypeError,
     "eval_k must be an integer, got '5'"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 5, r, batch_elements=0),
     ValueError, "batch_elements must be an integer >= 1"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x, 5, r, workers=0),
     ValueError, "workers must be an integer >= 1"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x[:, :5], 5, r), ValueError,
     r"x must have shape \(N, 12\)"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x[0], 5, r), ValueError,
     r"x must have shape \(N, 12\)"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x.astype(np.float32), 5, r),
     ValueError, "dtype float32 but the model is float64"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(m, x + 2, 5, r), ValueError,
     r"needs data in \[0, 1\]"),
    (lambda m, x, r, a: elbo_terms(m, x, None), TypeError, "rng must be a numpy.random.Generator"),
    (lambda m, x, r, a: evaluate_elbo(m, x, None), TypeError,
     "rng must be a numpy.random.Generator"),
    (lambda m, x, r, a: active_units(m, x, batch_size=0), ValueError,
     "batch_size must be an integer >= 1"),
    (lambda m, x, r, a: importance_weighted_log_likelihood_fast(a, x, 5, r), TypeError,
     "evaluation needs a VAE"),
    (lambda m, x, r, a: evaluate_elbo(a, x, r), TypeError, "evaluation needs a VAE"),
    (lambda m, x, r, a: active_units(a, x), TypeError, "evaluation needs a VAE"),
    (lambda m, x, r, a: evaluate_bound(m, x, "iwea", 2, r), ValueError,
     r"objective must be one of \('elbo', 'elbo-mc', 'iwae', 'wake-sleep'\), got 'iwea'"),
    (lambda m, x, r, a: evaluate_bound(m, x, "iwae", 0, r), ValueError, "k must be an integer"),
]


def test_an_overflowing_evaluation_is_an_error_not_a_nan():
    """A Gaussian decoder on unscaled pixels: the encoder's logvar overflows exp."""
    model = VAE(D, (8,), 3, "gaussian", dtype=np.float32)
    x = np.full((4, D), 255, np.float32)
    rng = np.random.default_rng(0)
    for call in (lambda: importance_weighted_log_likelihood_fast(model, x, 3, rng),
                 lambda: evaluate_bound(model, x, "iwae", 3, rng)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(NonFiniteError, match="scale the data"):
                call()


@pytest.mark.parametrize("call, error, message", BAD_CALLS)
def test_bad_input_raises_clear_errors(call, error, message):
    model = small_model()
    autoencoder = Autoencoder(12, (8,), 3, dtype=np.float64)
    with pytest.raises(error, match=message):
        call(model, small_data(model), np.random.default_rng(0), autoencoder)
