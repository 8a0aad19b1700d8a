"""Property tests (hypothesis): random shapes and values, up to extreme
logits (|l| <= 50) and log-variances (|logvar| <= 10).

Two kinds of property for every op:

* finite: forward values and gradients have no NaN/inf, and no overflow,
  invalid or divide-by-zero floating-point event, over the whole extreme
  range (whole batches, any mix of values);
* correct: gradients match central differences to TOL.  With extreme values
  in one array a sum can be ~1e9 while one of its terms' derivatives is ~1,
  below what a difference of the sum resolves, so these checks go one element
  at a time (gradcheck_helpers.elementwise_errors, which also checks that
  the batch op is the sum of those elements).  Central differences resolve
  a derivative to ~1e-11 of the value differenced, so the values are drawn
  away from points where a derivative vanishes (|u| != 1 below, x != sigmoid(l),
  ...): there a relative error is noise over noise.  Each strategy says which
  points it avoids and why; the tolerance is never loosened.

Whole VAEs of random (small) architecture are checked per tensor along a
random direction, and shown finite with extreme posteriors and decoder outputs.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gradcheck_helpers import (ACTIVATIONS, DECODERS, KINK_MARGIN, TOL, directional_derivatives,
                               elementwise_errors, loss_fn, make_data, min_distance_to_kink,
                               randomize_biases)
from numpyvae import VAE
from numpyvae.ops.gaussian import (gaussian_log_density_backward, gaussian_log_density_forward,
                               kl_diag_gaussians_backward, kl_diag_gaussians_forward,
                               kl_standard_normal_backward, kl_standard_normal_forward,
                               reparameterize_backward, reparameterize_forward)
from numpyvae.gradcheck import numerical_gradient_array, relative_error
from numpyvae.ops.layers import ACTIVATIONS as LAYER_ACTIVATIONS, linear_backward, linear_forward
from numpyvae.ops.likelihoods import BernoulliLikelihood, BernoulliLikelihoodFast, GaussianLikelihood

FEW = settings(max_examples=30, deadline=None)
MAX_LOGIT, MAX_LOGVAR = 50.0, 10.0
STRICT = dict(over="raise", invalid="raise", divide="raise")   # underflow to 0 is fine

floats = st.floats   # allow_nan/allow_infinity are off whenever bounds are given


def magnitude(lo, hi):
    """A float with |value| in [lo, hi], either sign."""
    return st.tuples(st.sampled_from([-1.0, 1.0]), floats(lo, hi)).map(lambda t: t[0] * t[1])


@st.composite
def grids(draw, element, max_rows=4, max_cols=4):
    """k arrays of one random shape (N, D) from a strategy of k-tuples, one per element."""
    n, d = draw(st.integers(1, max_rows)), draw(st.integers(1, max_cols))
    items = draw(st.lists(element, min_size=n * d, max_size=n * d))
    return [np.array(column, dtype=np.float64).reshape(n, d) for column in zip(*items)]


def upstream(draw, shape):
    """An upstream gradient with entries of size 0.5 to 2 and either sign."""
    return np.array(draw(st.lists(magnitude(0.5, 2.0), min_size=int(np.prod(shape)),
                                  max_size=int(np.prod(shape))))).reshape(shape)


def all_finite(*arrays):
    return all(np.all(np.isfinite(a)) for a in arrays)


# ------------------------------------------------------------ activations --

# Where each activation's derivative can be checked element by element:
# ReLU/LeakyReLU away from the kink at 0 (a 1e-5 step must not cross it);
# tanh and sigmoid where the derivative is >= ~1e-4 of the value (beyond,
# tanh(x) = +-1 - 2e^{-2|x|} and its derivative is below the resolution of
# a difference of values near 1).  softplus is resolvable everywhere.
CHECKABLE = {
    "relu": magnitude(KINK_MARGIN, 50.0),
    "leaky_relu": magnitude(KINK_MARGIN, 50.0),
    "tanh": floats(-4.0, 4.0),
    "sigmoid": floats(-50.0, 8.0),
    "softplus": floats(-50.0, 50.0),
}


@pytest.mark.parametrize("name", ACTIVATIONS)
@FEW
@given(data=st.data())
def test_activation_gradients(name, data):
    forward, backward, _ = LAYER_ACTIVATIONS[name]
    (x,) = data.draw(grids(st.tuples(CHECKABLE[name]), max_rows=5, max_cols=5))
    dout = upstream(data.draw, x.shape)
    dx = backward(dout, forward(x)[1])
    assert dx.shape == x.shape
    assert elementwise_errors(lambda a: forward(a)[0], [x], [dx], (0,), dout) <= TOL


@pytest.mark.parametrize("name", ACTIVATIONS)
@FEW
@given(data=st.data())
def test_activations_are_finite_for_huge_inputs(name, data):
    forward, backward, _ = LAYER_ACTIVATIONS[name]
    (x,) = data.draw(grids(st.tuples(floats(-1e4, 1e4)), max_rows=5, max_cols=5))
    with np.errstate(**STRICT):
        out, cache = forward(x)
        dx = backward(np.ones_like(x), cache)
    assert all_finite(out, dx)


# ----------------------------------------------------------------- linear --

@FEW
@given(n=st.integers(1, 5), d=st.integers(1, 5), h=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       scale=floats(1e-2, 1e2))
def test_linear_gradients(n, d, h, seed, scale):
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal((n, d)) * scale, rng.standard_normal((d, h))
    b, dout = rng.standard_normal(h), rng.standard_normal((n, h))
    dx, dW, db = linear_backward(dout, linear_forward(x, W, b)[1])
    forward = lambda: linear_forward(x, W, b)[0]  # noqa: E731
    # The layer is exactly linear in each of x, W, b, so a central difference
    # has no truncation error for any step; a unit step makes its rounding
    # error 1e5 times smaller than the default 1e-5 would, which matters for
    # entries that are small sums of large products.
    for analytic, a in ((dx, x), (dW, W), (db, b)):
        assert relative_error(analytic, numerical_gradient_array(forward, a, dout, h=1.0)) <= TOL


# -------------------------------------------------------------- Bernoulli --

BERNOULLI_FORMS = [BernoulliLikelihood, BernoulliLikelihoodFast]   # textbook and fast


def bernoulli_errors(lik, x, logits, dlogp):
    logp, cache = lik.log_prob_forward(x, logits)
    dlogits = lik.log_prob_backward(dlogp, cache)
    assert all_finite(logp, dlogits)
    return elementwise_errors(lambda a, l: lik.log_prob_forward(a, l)[0], [x, logits],
                              [dlogits], (1,), dlogp)


@FEW
@given(data=st.data())
def test_bernoulli_gradients_binary_data_extreme_logits(data):
    """Binary x, any logit in [-50, 50]: every element is resolvable (where the
    derivative x - sigmoid(l) is tiny, so is the element's log-probability)
    in the fast form, whose (x - 1/2) l - |l|/2 is exactly 0 where x = 1,
    l > 0 (or x = 0, l < 0).  The textbook x l - softplus(l) is there a
    difference of two numbers ~|l|, accurate to eps |l| in absolute terms
    only, which a central difference cannot resolve to TOL; its gradient is
    proven equal to this one in test_fast_forms.py."""
    x, logits = data.draw(grids(st.tuples(st.sampled_from([0.0, 1.0]),
                                          floats(-MAX_LOGIT, MAX_LOGIT))))
    errors = bernoulli_errors(BernoulliLikelihoodFast(), x, logits,
                              upstream(data.draw, x.shape[:1]))
    assert errors <= TOL


@pytest.mark.parametrize("form", BERNOULLI_FORMS)
@FEW
@given(data=st.data())
def test_bernoulli_gradients_grey_data_extreme_logits(form, data):
    """Grey x on a grid; logits where the derivative x - sigmoid(l) is not
    ~0 (it is stationary at l = logit(x), where nothing can be resolved)."""
    element = st.tuples(st.sampled_from([0.125, 0.25, 0.5, 0.75, 0.875]),
                        floats(-MAX_LOGIT, MAX_LOGIT)).filter(
        lambda t: abs(t[0] - 1 / (1 + np.exp(-t[1]))) >= 1e-2)
    x, logits = data.draw(grids(element))
    assert bernoulli_errors(form(), x, logits, upstream(data.draw, x.shape[:1])) <= TOL


@pytest.mark.parametrize("form", BERNOULLI_FORMS)
@FEW
@given(data=st.data())
def test_bernoulli_is_finite_for_any_logits(form, data):
    x, logits = data.draw(grids(st.tuples(floats(0.0, 1.0), floats(-1e4, 1e4))))
    lik = form()
    with np.errstate(**STRICT):
        logp, cache = lik.log_prob_forward(x, logits)
        dlogits = lik.log_prob_backward(np.ones(x.shape[0]), cache)
        mean = lik.mean(logits)
    assert all_finite(logp, dlogits, mean)
    assert np.all(logp <= 1e-12)      # a log-probability of binary data is <= 0
    assert np.all((mean >= 0) & (mean <= 1))


# --------------------------------------------------------------- Gaussian --

def gaussian_element(max_logvar=MAX_LOGVAR):
    """(x, mean, logvar) with x = mean + std * u.  The derivatives are
    u / std (zero at u = 0) and (u^2 - 1) / 2 (zero at |u| = 1), so |u| keeps
    away from 0 and 1."""
    u = st.one_of(magnitude(0.1, 0.9), magnitude(1.1, 5.0))
    return st.tuples(floats(-10.0, 10.0), floats(-max_logvar, max_logvar), u).map(
        lambda t: (t[0] + np.exp(t[1] / 2) * t[2], t[0], t[1]))


@FEW
@given(data=st.data())
def test_gaussian_log_density_gradients_extreme_logvar(data):
    x, mean, logvar = data.draw(grids(gaussian_element()))
    dlogp = upstream(data.draw, x.shape[:1])
    logp, cache = gaussian_log_density_forward(x, mean, logvar)
    dmean, dlogvar = gaussian_log_density_backward(dlogp, cache)
    assert all_finite(logp, dmean, dlogvar)
    value = lambda a, m, lv: gaussian_log_density_forward(a, m, lv)[0]  # noqa: E731
    assert elementwise_errors(value, [x, mean, logvar], [dmean, dlogvar], (1, 2), dlogp) <= TOL


@FEW
@given(data=st.data())
def test_gaussian_learned_variance_likelihood_gradients(data):
    x, mean, logvar = data.draw(grids(gaussian_element()))
    lik = GaussianLikelihood("learned")
    dlogp = upstream(data.draw, x.shape[:1])
    logp, cache = lik.log_prob_forward(x, np.concatenate([mean, logvar], axis=1))
    dout = lik.log_prob_backward(dlogp, cache)
    assert dout.shape == (x.shape[0], 2 * x.shape[1]) and all_finite(logp, dout)
    d = x.shape[1]
    value = lambda a, m, lv: lik.log_prob_forward(a, np.concatenate([m, lv], axis=1))[0]  # noqa: E731
    assert elementwise_errors(value, [x, mean, logvar], [dout[:, :d], dout[:, d:]], (1, 2),
                              dlogp) <= TOL


@FEW
@given(data=st.data(), logvar=floats(-9.0, 9.0))
def test_gaussian_fixed_variance_likelihood_gradients(data, logvar):
    obs_var = float(np.exp(logvar))
    lik = GaussianLikelihood(obs_var)
    element = st.tuples(floats(-10.0, 10.0), magnitude(0.2, 5.0)).map(
        lambda t: (t[0] + np.sqrt(obs_var) * t[1], t[0]))    # u away from 0, where dmean = 0
    x, mean = data.draw(grids(element))
    dlogp = upstream(data.draw, x.shape[:1])
    logp, cache = lik.log_prob_forward(x, mean)
    dmean = lik.log_prob_backward(dlogp, cache)
    assert all_finite(logp, dmean)
    assert elementwise_errors(lambda a, m: lik.log_prob_forward(a, m)[0], [x, mean], [dmean],
                              (1,), dlogp) <= TOL


# --------------------------------------------------------- reparameterize --

@FEW
@given(data=st.data())
def test_reparameterize_gradients_extreme_logvar(data):
    """eps away from 0, where dz/dlogvar = eps std / 2 vanishes."""
    mu, logvar, eps = data.draw(grids(st.tuples(floats(-10.0, 10.0),
                                                floats(-MAX_LOGVAR, MAX_LOGVAR),
                                                magnitude(0.1, 4.0))))
    dz = upstream(data.draw, mu.shape)
    z, cache = reparameterize_forward(mu, logvar, eps)
    dmu, dlogvar = reparameterize_backward(dz, cache)
    assert all_finite(z, dmu, dlogvar)
    value = lambda m, lv, e: reparameterize_forward(m, lv, e)[0]  # noqa: E731
    assert elementwise_errors(value, [mu, logvar, eps], [dmu, dlogvar], (0, 1), dz) <= TOL


# --------------------------------------------------------------------- KL --

@FEW
@given(data=st.data())
def test_kl_standard_normal_gradients_extreme_logvar(data):
    """dKL/dmu = mu (zero at 0: 0 itself is allowed, where both sides are exactly
    0, but not tiny mu next to exp(10) = 2e4), dKL/dlogvar = (exp(logvar) - 1)/2
    (zero at logvar = 0)."""
    mu_values = st.one_of(st.just(0.0), magnitude(0.5, 10.0))
    mu, logvar = data.draw(grids(st.tuples(mu_values, magnitude(0.1, MAX_LOGVAR))))
    dkl = upstream(data.draw, mu.shape[:1])
    kl, cache = kl_standard_normal_forward(mu, logvar)
    dmu, dlogvar = kl_standard_normal_backward(dkl, cache)
    assert all_finite(kl, dmu, dlogvar) and np.all(kl >= 0)
    value = lambda m, lv: kl_standard_normal_forward(m, lv)[0]  # noqa: E731
    assert elementwise_errors(value, [mu, logvar], [dmu, dlogvar], (0, 1), dkl) <= TOL


def kl_diag_element():
    """(mu_q, logvar_q, mu_p, logvar_p) with mu_q - mu_p = s * u, s the larger
    of the two standard deviations, so that the mean term d^2 / var_p is on
    the scale of the rest of the KL and its derivative is resolvable.  The
    log-variance derivatives are (exp(logvar_q - logvar_p) - 1) / 2 and
    (1 - ratio) / 2, ratio = (var_q + d^2) / var_p: both kept away from 0."""
    def build(t):
        mu_q, logvar_q, logvar_p, u = t
        d = np.exp(max(logvar_q, logvar_p) / 2) * u
        return mu_q, logvar_q, mu_q - d, logvar_p

    def valid(e):
        mu_q, logvar_q, mu_p, logvar_p = e
        ratio = (np.exp(logvar_q) + (mu_q - mu_p) ** 2) / np.exp(logvar_p)
        return abs(logvar_q - logvar_p) >= 0.1 and abs(ratio - 1) >= 0.1

    return st.tuples(floats(-10.0, 10.0), floats(-MAX_LOGVAR, MAX_LOGVAR),
                     floats(-MAX_LOGVAR, MAX_LOGVAR), magnitude(0.5, 3.0)).map(build).filter(valid)


@FEW
@given(data=st.data())
def test_kl_diag_gradients_extreme_logvar(data):
    inputs = data.draw(grids(kl_diag_element()))
    dkl = upstream(data.draw, inputs[0].shape[:1])
    kl, cache = kl_diag_gaussians_forward(*inputs)
    grads = kl_diag_gaussians_backward(dkl, cache)
    assert all_finite(kl, *grads) and np.all(kl >= 0)
    value = lambda *a: kl_diag_gaussians_forward(*a)[0]  # noqa: E731
    assert elementwise_errors(value, inputs, list(grads), (0, 1, 2, 3), dkl) <= TOL


@FEW
@given(data=st.data())
def test_kl_ops_are_finite_and_nonnegative_for_any_extreme_values(data):
    mu_q, lv_q, mu_p, lv_p = data.draw(grids(st.tuples(
        floats(-10.0, 10.0), floats(-MAX_LOGVAR, MAX_LOGVAR),
        floats(-10.0, 10.0), floats(-MAX_LOGVAR, MAX_LOGVAR))))
    with np.errstate(**STRICT):
        kl0, cache0 = kl_standard_normal_forward(mu_q, lv_q)
        grads0 = kl_standard_normal_backward(np.ones(len(kl0)), cache0)
        kl, cache = kl_diag_gaussians_forward(mu_q, lv_q, mu_p, lv_p)
        grads = kl_diag_gaussians_backward(np.ones(len(kl)), cache)
        same, _ = kl_diag_gaussians_forward(mu_q, lv_q, mu_q, lv_q)
    assert all_finite(kl0, kl, *grads0, *grads)
    # KL >= 0, and KL(q || q) = 0, up to the rounding of the terms (exp(10) = 2e4)
    rounding = 1e-12 * np.sum(np.exp(lv_q) + np.exp(lv_q - lv_p) + np.abs(lv_q) + np.abs(lv_p)
                              + (mu_q - mu_p) ** 2 * np.exp(-lv_p) + mu_q ** 2 + 1, axis=1)
    assert np.all(kl0 >= -rounding) and np.all(kl >= -rounding)
    assert np.all(np.abs(same) <= rounding)


# ------------------------------------------------------------ whole model --

model_configs = st.fixed_dictionaries({
    "decoder": st.sampled_from(DECODERS),
    "activation": st.sampled_from(ACTIVATIONS),
    "input_dim": st.integers(1, 6),
    "hidden_dims": st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple),
    "latent_dim": st.integers(1, 3),
    "n": st.integers(1, 4),
    "beta": st.sampled_from([0.5, 1.0, 2.0]),
    "seed": st.integers(0, 2**32 - 1),
})


def build(config):
    likelihood, obs_var = config["decoder"]
    model = VAE(config["input_dim"], config["hidden_dims"], config["latent_dim"], likelihood,
                obs_var, config["activation"], np.float64, config["seed"])
    rng = np.random.default_rng(config["seed"])
    randomize_biases(model.params, rng)
    x = make_data(likelihood, config["n"], config["input_dim"], rng)
    eps = rng.standard_normal((config["n"], config["latent_dim"]))
    return model, x, eps, rng


def within_stated_ranges(model, x, eps):
    """The encoder's log-variances within +-10 and the decoder's logits within
    +-50 (log-variances within +-10), the ranges these tests claim.  A random
    init of a tiny network (He weights of std 1.4 for a 1-unit layer) can go
    far beyond: a log-variance of -200 gives a loss of 1e67 whose third
    derivative swamps any central difference."""
    mu, logvar = model.encode(x)
    out = model.decoder.forward(model.params, mu + np.exp(logvar / 2) * eps)[0]
    if model.likelihood.name == "bernoulli":
        return np.all(np.abs(logvar) <= MAX_LOGVAR) and np.all(np.abs(out) <= MAX_LOGIT)
    decoder_logvar = out[:, x.shape[1]:] if model.likelihood.learned else 0.0
    return np.all(np.abs(logvar) <= MAX_LOGVAR) and np.all(np.abs(decoder_logvar) <= MAX_LOGVAR)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(config=model_configs)
def test_vae_gradients_for_random_architectures(config):
    """Every tensor of random small VAEs, along a random direction per tensor.

    A tensor whose whole gradient is below ~1e-4 of the loss's terms (e.g.
    behind two LeakyReLU units on their 0.01 slope) cannot be resolved by a
    central difference of the loss; it is skipped, judged by the numerical
    value alone so that a wrong analytic gradient cannot cause the skip.
    """
    model, x, eps, rng = build(config)
    assume(min_distance_to_kink(model, x, eps) >= KINK_MARGIN)     # no ReLU kink within a step
    assume(within_stated_ranges(model, x, eps))
    (loss, recon, kl), grads = model.loss_terms_and_grads(x, eps=eps, beta=config["beta"])
    assert np.isfinite(loss) and all_finite(grads.flat)
    scale = abs(recon) + config["beta"] * abs(kl)
    derivatives = directional_derivatives(model, loss_fn(model, x, eps, config["beta"]), rng)
    errors = {name: relative_error(analytic, numerical)
              for name, (analytic, numerical) in derivatives.items()
              if numerical == 0 or abs(numerical) >= 1e-4 * scale}
    assume(len(errors) >= len(derivatives) // 2)     # skip degenerate nets (e.g. 1-unit LeakyReLU chains)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: {errors[worst]:.2e}"


@FEW
@given(config=model_configs, logvar=floats(-MAX_LOGVAR, MAX_LOGVAR),
       logit=floats(-MAX_LOGIT, MAX_LOGIT))
def test_vae_is_finite_with_extreme_posteriors_and_decoder_outputs(config, logvar, logit):
    """Push the encoder's log-variances and the decoder's outputs (logits, or
    mean/log-variance for a Gaussian) to the extremes through the output biases:
    the loss and every gradient stay finite, with no floating-point error."""
    model, x, eps, _ = build(config)
    latent = config["latent_dim"]
    model.params[f"encoder.{len(config['hidden_dims'])}.W"][:, latent:] = 0
    model.params[f"encoder.{len(config['hidden_dims'])}.b"][latent:] = logvar
    last = f"decoder.{len(config['hidden_dims'])}"
    model.params[last + ".W"][...] = 0
    model.params[last + ".b"][...] = logit if config["decoder"][0] == "bernoulli" else logit / 5
    with np.errstate(**STRICT):
        loss, grads = model.loss_and_grads(x, eps=eps, beta=config["beta"])
        mean = model.decode(eps)
    assert np.isfinite(loss) and all_finite(grads.flat, mean)
