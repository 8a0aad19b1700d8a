"""Every fast form computes what its textbook form computes, to rounding.

The library keeps each formula as written (the textbook form) and, where a
tuned form measurably wins on the training path, the tuned one beside it
under the same name plus ``_fast`` / ``Fast`` (benchmarks/fast_forms.md has
the timings).  Training uses the fast forms, the gradient checks prove the
textbook forms right; these property tests (hypothesis, float32 and
float64) close the loop: both forms give the same numbers up to a bound on
floating-point rounding, stated with each test in units of the dtype's
machine epsilon ``eps`` (1.2e-7 in float32, 2.2e-16 in float64).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from numpyvae.ops.layers import (linear_backward, linear_backward_fast, linear_forward, log1p_fast,
                             relu_forward, relu_forward_fast, softplus)
from numpyvae import VAE
from numpyvae.evaluate import logsumexp_fast
from numpyvae.ops.likelihoods import BernoulliLikelihood, BernoulliLikelihoodFast
from numpyvae.objectives import log_weights, log_weights_fast
from numpyvae.optim import SGD, Adagrad, AdagradFast, Adam, AdamFast, SGDFast

DTYPES = [np.float32, np.float64]
SETTINGS = settings(max_examples=40, deadline=None)


def eps_of(dtype):
    return float(np.finfo(dtype).eps)


@st.composite
def arrays(draw, dtype, shape, lo=-50.0, hi=50.0):
    """An array of the given shape and dtype with finite entries in [lo, hi]."""
    values = draw(st.lists(st.floats(lo, hi), min_size=int(np.prod(shape)),
                           max_size=int(np.prod(shape))))
    return np.array(values, dtype=dtype).reshape(shape)


shapes = st.tuples(st.integers(1, 6), st.integers(1, 7))


# ------------------------------------------------------------------- ReLU --

@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_relu_forward_fast_is_bitwise_the_textbook_form(dtype, data):
    """max(x, 0) against a row of zeros or against the scalar 0: the same ufunc
    on the same values, so identical bits (tolerance 0)."""
    x = data.draw(arrays(dtype, data.draw(shapes), -1e30, 1e30))
    out, cache = relu_forward(x)
    out_fast, cache_fast = relu_forward_fast(x)
    assert out_fast.dtype == out.dtype == dtype
    np.testing.assert_array_equal(out_fast, out)
    np.testing.assert_array_equal(cache_fast, cache)


# ---------------------------------------------------------------- linear --

@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_linear_backward_fast_agrees_with_the_textbook_form(dtype, data):
    """dx and dW are the same products (tolerance 0); db = 1^T dout against
    np.sum(dout, axis=0): two orders of summing the same N numbers, each
    within (N - 1) eps sum_n |dout[n]| of the exact sum, so the two differ
    by at most 2 N eps sum_n |dout[n]| per entry."""
    n, d = data.draw(shapes)
    h = data.draw(st.integers(1, 5))
    x = data.draw(arrays(dtype, (n, d), -10, 10))
    W = data.draw(arrays(dtype, (d, h), -10, 10))
    b = data.draw(arrays(dtype, (h,), -10, 10))
    dout = data.draw(arrays(dtype, (n, h), -1e3, 1e3))
    cache = linear_forward(x, W, b)[1]
    dx, dW, db = linear_backward(dout, cache)
    dx_fast, dW_fast, db_fast = linear_backward_fast(dout, cache)
    assert db_fast.dtype == db.dtype == dtype
    np.testing.assert_array_equal(dx_fast, dx)
    np.testing.assert_array_equal(dW_fast, dW)
    bound = 2 * n * eps_of(dtype) * np.sum(np.abs(dout.astype(np.float64)), axis=0)
    assert np.all(np.abs(db_fast.astype(np.float64) - db) <= bound)


# ------------------------------------------------------------------ log1p --

@pytest.mark.parametrize("dtype", DTYPES)
def test_log1p_fast_agrees_with_log1p_to_a_few_eps_relative(dtype):
    """log(u) - ((u - 1) - y) / u against np.log1p(y) for y = exp(-|x|) over
    [0, 1]: y from 1 down to below eps / 2 (where 1 + y rounds to 1) and 0,
    relative error at most 4 eps (log's own rounding, and the correction's)."""
    y = np.concatenate([np.exp(-np.linspace(0, 120, 20001)), [0.0]]).astype(dtype)
    value, u = log1p_fast(y)
    expected = np.log1p(y.astype(np.float64))
    assert value.dtype == u.dtype == dtype
    assert np.array_equal(u, y + 1)
    scale = np.maximum(np.abs(expected), np.finfo(dtype).tiny)
    assert np.max(np.abs(value - expected) / scale) <= 4 * eps_of(dtype)


# ------------------------------------------------------------- Bernoulli --

def bernoulli_inputs(data, dtype, lo=-50.0, hi=50.0):
    """x (binary or grey levels), logits in [lo, hi], upstream dlogp (N,)."""
    n, d = data.draw(shapes)
    logits = data.draw(arrays(dtype, (n, d), lo, hi))
    if data.draw(st.booleans()):
        x = data.draw(arrays(dtype, (n, d), 0, 1)).round()
    else:
        x = data.draw(arrays(dtype, (n, d), 0, 1))
    dlogp = data.draw(arrays(dtype, (n,), -2, 2))
    return x, logits, dlogp


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_bernoulli_log_prob_fast_agrees_with_the_textbook_form(dtype, data):
    """sum_d [x l - softplus(l)] against sum_d [(x - 1/2) l - |l|/2 - log1p(exp(-|l|))]:
    each term has size at most |l| + log 2, each form rounds each term to
    a few eps of that and sums D of them, so the two differ by at most
    (D + 8) eps sum_d (|l_d| + 1) per example."""
    x, logits, _ = bernoulli_inputs(data, dtype)
    logp, _ = BernoulliLikelihood().log_prob_forward(x, logits)
    logp_fast, _ = BernoulliLikelihoodFast().log_prob_forward(x, logits)
    assert logp_fast.dtype == logp.dtype == dtype
    d = x.shape[1]
    bound = (d + 8) * eps_of(dtype) * np.sum(np.abs(logits.astype(np.float64)) + 1, axis=1)
    assert np.all(np.abs(logp_fast.astype(np.float64) - logp) <= bound)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_bernoulli_log_prob_backward_fast_agrees_with_the_textbook_form(dtype, data):
    """dlogp (x - sigmoid(l)) against dlogp ((x - 1/2) - sign(l) (1/(1 + e^-|l|) - 1/2)):
    both subtract numbers of size <= 1 with a few eps of relative error each, so
    they differ by at most 8 eps |dlogp| per entry (absolute: where
    x - sigmoid(l) is tiny both are dominated by rounding)."""
    x, logits, dlogp = bernoulli_inputs(data, dtype)
    dlogits = BernoulliLikelihood().log_prob_backward(
        dlogp, BernoulliLikelihood().log_prob_forward(x, logits)[1])
    dlogits_fast = BernoulliLikelihoodFast().log_prob_backward(
        dlogp, BernoulliLikelihoodFast().log_prob_forward(x, logits)[1])
    assert dlogits_fast.dtype == dlogits.dtype == dtype
    bound = 8 * eps_of(dtype) * np.abs(dlogp.astype(np.float64))[:, None]
    assert np.all(np.abs(dlogits_fast.astype(np.float64) - dlogits) <= bound)


def test_bernoulli_forms_agree_on_a_default_size_batch():
    """The bounds above at the size training uses: (128, 784) float32."""
    rng = np.random.default_rng(0)
    logits = (rng.standard_normal((128, 784)) * 5).astype(np.float32)
    x = (rng.random((128, 784)) < 0.3).astype(np.float32)
    dlogp = np.full(128, -1 / 128, dtype=np.float32)
    eps = eps_of(np.float32)
    (logp, cache), (logp_fast, cache_fast) = (BernoulliLikelihood().log_prob_forward(x, logits),
                                              BernoulliLikelihoodFast().log_prob_forward(x, logits))
    bound = (784 + 8) * eps * np.sum(np.abs(logits.astype(np.float64)) + 1, axis=1)
    assert np.all(np.abs(logp_fast.astype(np.float64) - logp) <= bound)
    terms = x.astype(np.float64) * logits - softplus(logits.astype(np.float64))
    assert np.max(np.abs(logp - terms.sum(axis=1))) <= np.max(bound)
    difference = (BernoulliLikelihoodFast().log_prob_backward(dlogp, cache_fast).astype(np.float64)
                  - BernoulliLikelihood().log_prob_backward(dlogp, cache))
    assert np.max(np.abs(difference)) <= 8 * eps / 128


# ------------------------------------------- the evaluation's log-weights --

def evaluation_inputs(data, dtype, likelihood="bernoulli"):
    """A small VAE (one or two hidden layers, weights scaled by 0.3 to 3, nonzero
    biases), data x (n, D) (binary or grey levels) and eps (k, n, L)."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    hidden = tuple(data.draw(st.lists(st.integers(1, 6), min_size=1, max_size=2)))
    model = VAE(data.draw(st.integers(1, 7)), hidden, data.draw(st.integers(1, 3)),
                likelihood=likelihood, activation=data.draw(st.sampled_from(["relu", "tanh"])),
                dtype=dtype, seed=1)
    model.params.flat[:] = rng.standard_normal(model.params.flat.size) * data.draw(
        st.sampled_from([0.3, 1.0, 3.0]))
    n, k = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    x = rng.random((n, model.input_dim))
    x = (x.round() if data.draw(st.booleans()) else x).astype(dtype)
    return model, x, rng.standard_normal((k, n, model.latent_dim)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_log_weights_fast_agrees_with_log_weights(dtype, data):
    """For the Bernoulli decoder (logits l = h W + b), sum_d (x_d - 1/2) l_d as
    h . (W (x - 1/2)) + b . (x - 1/2) against summing the rounded logits:
    each logit carries an error of at most (H + 1) eps (|h| |W| + |b|)_d, and
    each form sums D + H terms, so the two differ by at most

        (D + H + 8) eps [2 sum_d |x_d - 1/2| (|h| |W| + |b|)_d + sum_d (|l_d| + 1)]
            + 4 eps (|log p(x|z)| + |log p(z)| + |log q|)

    per sample, the second sum bounding the softplus part summed in another
    order (as for BernoulliLikelihoodFast) and the last term the two additions."""
    model, x, eps = evaluation_inputs(data, dtype)
    logw, (fwd, logq, _, logpz, _) = log_weights(model, x, eps)
    logw_fast = log_weights_fast(model, x, eps)
    assert logw_fast.dtype == logw.dtype == dtype and logw_fast.shape == logw.shape
    k, n = logw.shape
    f64 = np.float64
    hidden = model.decoder.forward(model.params, fwd.z.reshape(k * n, -1))[1][-1][0][0]
    w_out, b_out = (np.abs(a.astype(f64)) for a in model.decoder.layer_params(model.params, -1))
    logit_scale = (np.abs(hidden.astype(f64)) @ w_out + b_out).reshape(k, n, -1)
    centred = np.abs(x.astype(f64) - 0.5)
    terms = (2 * np.sum(centred * logit_scale, axis=-1)
             + np.sum(np.abs(fwd.decoder_out.astype(f64)) + 1, axis=-1))
    d, h = x.shape[1], hidden.shape[1]
    bound = eps_of(dtype) * ((d + h + 8) * terms
                             + 4 * (np.abs(fwd.logpx) + np.abs(logpz) + np.abs(logq)))
    # where z overflows (std = exp(logvar / 2) past float32's range with weights x3),
    # both forms give the same -inf; everywhere else they agree within the bound
    overflowed = ~np.isfinite(logw)
    np.testing.assert_array_equal(logw_fast[overflowed], logw[overflowed])
    assert np.all(np.abs(logw_fast.astype(f64) - logw)[~overflowed] <= bound[~overflowed])


@pytest.mark.parametrize("likelihood", ["gaussian", "gaussian-sigmoid"])
def test_log_weights_fast_is_log_weights_for_other_likelihoods(likelihood):
    model = VAE(5, (4,), 2, likelihood=likelihood, seed=2)
    rng = np.random.default_rng(2)
    x, eps = rng.standard_normal((3, 5)), rng.standard_normal((4, 3, 2))
    np.testing.assert_array_equal(log_weights_fast(model, x, eps), log_weights(model, x, eps)[0])


@SETTINGS
@given(data=st.data())
def test_logsumexp_fast_agrees_with_scipy(data):
    """m + log sum_j exp(a_j - m) against scipy.special.logsumexp (float64):
    the sum of k terms in (0, 1] rounds to k eps relative, i.e. k eps absolute
    after the log, and adding m to eps |m|; bound eps (4 |m| + 2 k + 8)."""
    k, n = data.draw(st.integers(1, 50)), data.draw(st.integers(1, 4))
    a = data.draw(arrays(np.float64, (k, n), -1e4, 1e4))
    bound = eps_of(np.float64) * (4 * np.abs(a.max(axis=0)) + 2 * k + 8)
    assert np.all(np.abs(logsumexp_fast(a) - logsumexp(a, axis=0)) <= bound)


# ------------------------------------------------------------------ Adam --

def magnitudes(lo, hi):
    """A float with |value| in [lo, hi] or 0, either sign."""
    return st.one_of(st.just(0.0), st.tuples(st.sampled_from([-1.0, 1.0]), st.floats(lo, hi))
                     .map(lambda t: t[0] * t[1]))


@pytest.mark.parametrize("scratch", [False, True], ids=["grads-kept", "grads-as-scratch"])
@pytest.mark.parametrize("dtype", DTYPES)
@SETTINGS
@given(data=st.data())
def test_adam_fast_agrees_with_the_textbook_update(dtype, scratch, data):
    """The update u_t = lr m_hat / (sqrt(v_hat) + eps_adam) of AdamFast (moments
    kept as sums, lr and eps rescaled) against Adam's, step by step.

    The parameters are reset to 0 before every step, so each step's p is
    exactly -u_t.  m is a sum that may cancel, so its rounding is bounded by
    the same average of |g| (m_abs); v sums positive terms.  Bound at step t:

        |u_fast - u| <= 16 t eps (lr m_abs_hat / (sqrt(v_hat) + eps_adam) + |u|)

    with m_abs_hat and v_hat computed in float64 here."""
    steps, size = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 8))
    b1, b2 = data.draw(st.sampled_from([0.0, 0.5, 0.9])), data.draw(st.sampled_from([0.9, 0.999]))
    lr, eps_adam = data.draw(st.sampled_from([1e-3, 0.1])), data.draw(st.sampled_from([1e-8, 1e-3, 0.1]))
    grads = [np.array(data.draw(st.lists(magnitudes(1e-4, 1e4), min_size=size, max_size=size)),
                      dtype=dtype) for _ in range(steps)]
    p, p_fast = {"p": np.zeros(size, dtype)}, {"p": np.zeros(size, dtype)}
    textbook = Adam(p, lr=lr, betas=(b1, b2), eps=eps_adam)
    fast = AdamFast(p_fast, lr=lr, betas=(b1, b2), eps=eps_adam)
    m_abs = v = np.zeros(size)
    for t, g in enumerate(grads, start=1):
        p["p"][...] = 0
        p_fast["p"][...] = 0
        textbook.step({"p": g.copy()})
        fast.step({"p": g.copy()}, grads_are_scratch=scratch)
        g64 = g.astype(np.float64)
        m_abs = b1 * m_abs + (1 - b1) * np.abs(g64)
        v = b2 * v + (1 - b2) * g64 * g64
        u = -p["p"].astype(np.float64)
        scale = lr * (m_abs / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps_adam) + np.abs(u)
        bound = 16 * t * eps_of(dtype) * scale
        assert np.all(np.abs(-p_fast["p"].astype(np.float64) - u) <= bound), f"step {t}"


@pytest.mark.parametrize("scratch", [False, True], ids=["grads-kept", "grads-as-scratch"])
@pytest.mark.parametrize("flat", [True, False], ids=["flat-buffer", "per-tensor"])
@pytest.mark.parametrize("textbook_form, fast_form, kwargs", [
    (SGD, SGDFast, dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    (Adagrad, AdagradFast, dict(lr=0.1, eps=1e-8, weight_decay=0.01)),
], ids=["sgd", "adagrad"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_and_adagrad_fast_are_bitwise_the_textbook_updates(textbook_form, fast_form, kwargs,
                                                               dtype, flat, scratch):
    """SGDFast and AdagradFast run the textbook updates' operations in the same
    order, in place: five steps give the same parameters and state, bit for bit."""
    rng = np.random.default_rng(5)
    model = VAE(6, (5,), 3, dtype=dtype)
    p_text = model.params.copy() if flat else {k: v.copy() for k, v in model.params.items()}
    p_fast = model.params.copy() if flat else {k: v.copy() for k, v in model.params.items()}
    textbook, fast = textbook_form(p_text, **kwargs), fast_form(p_fast, **kwargs)
    for _ in range(5):
        grads = model.params.zeros_like()
        grads.flat[...] = rng.standard_normal(grads.flat.size)
        as_given = grads if flat else dict(grads.items())
        textbook.step({k: v.copy() for k, v in as_given.items()} if not flat else grads.copy())
        fast.step(as_given, grads_are_scratch=scratch)
    for name in p_text:
        np.testing.assert_array_equal(p_fast[name], p_text[name], err_msg=name)
    for state in textbook.state_names:
        for name in p_text:
            np.testing.assert_array_equal(fast.state[state][name], textbook.state[state][name])


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_a_textbook_model_computes_what_the_fast_model_computes(activation, likelihood):
    """VAE(textbook=True) runs layers.ACTIVATIONS, linear_backward and
    BernoulliLikelihood: the same loss and gradients as the fast forms, to rounding."""
    rng = np.random.default_rng(2)
    x = rng.random((7, 6))
    fast = VAE(6, (5, 4), 3, likelihood=likelihood, activation=activation, dtype=np.float64)
    textbook = VAE(6, (5, 4), 3, likelihood=likelihood, activation=activation,
                   dtype=np.float64, textbook=True)
    eps = rng.standard_normal((7, 3))
    loss_fast, grads_fast = fast.loss_and_grads(x, eps=eps)
    loss_text, grads_text = textbook.loss_and_grads(x, eps=eps)
    assert loss_text == pytest.approx(loss_fast, rel=1e-13)
    np.testing.assert_allclose(grads_text.flat, grads_fast.flat, rtol=1e-12, atol=1e-14)
    assert type(textbook.likelihood).__name__ == ("BernoulliLikelihood" if likelihood == "bernoulli"
                                                  else "GaussianLikelihood")


def test_an_edit_of_a_textbook_function_changes_only_the_textbook_model(monkeypatch):
    """What a student edits (here linear_backward, made to return 2 dW) is what a
    textbook=True model trains with; the fast model does not see it."""
    from numpyvae.model import mlp

    real = mlp.linear_backward

    def edited(dout, cache, dW=None, db=None, need_dx=True):
        dx, dW, db = real(dout, cache, dW, db, need_dx)
        dW *= 2
        return dx, dW, db

    rng = np.random.default_rng(3)
    x, eps = rng.random((4, 6)), rng.standard_normal((4, 3))
    before = VAE(6, (5,), 3, dtype=np.float64, textbook=True).loss_and_grads(x, eps=eps)[1]
    monkeypatch.setattr(mlp, "linear_backward", edited)
    textbook = VAE(6, (5,), 3, dtype=np.float64, textbook=True).loss_and_grads(x, eps=eps)[1]
    fast = VAE(6, (5,), 3, dtype=np.float64).loss_and_grads(x, eps=eps)[1]
    np.testing.assert_allclose(textbook["encoder.0.W"], 2 * before["encoder.0.W"], rtol=1e-12)
    np.testing.assert_allclose(fast["encoder.0.W"], before["encoder.0.W"], rtol=1e-12)
