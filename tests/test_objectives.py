"""The training objectives of objectives.py: values against independent
computations (scipy), every gradient against central differences in float64
(per parameter tensor and per intermediate quantity, with eps fixed), and
the relations between them (k = 1 IWAE = estimator A, the sampled KL's mean
is the closed form, L_k rises with k)."""

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from gradcheck_helpers import (DECODER_IDS, DECODERS, TOL, assert_away_from_kinks,
                               directional_errors, kl_by_hand, log_likelihood_by_hand,
                               model_grad_errors, small_model)
from numpyvae.evaluate import importance_weighted_log_likelihood_fast
from numpyvae import VAE, Adam
from numpyvae.gradcheck import numerical_gradient, relative_error
from numpyvae.ops.likelihoods import BernoulliLikelihood, GaussianLikelihood
from numpyvae.objectives import OBJECTIVES, loss_and_grads, sleep_phase

SAMPLED = ("elbo", "elbo-mc", "iwae")


def setup(likelihood, obs_var, k, n=3, activation="tanh", seed=1):
    """A small float64 VAE, data x (n, 4) and fixed eps (k, n, 2) ((n, 2) for k = 1).

    eps is drawn from N(0, 0.5^2): with full-size draws a few importance
    weights are ~1e-5 and some entries of the IWAE gradients fall below what
    central differences of a ~10-nat loss resolve (see gradcheck_helpers)."""
    model, x, _ = small_model(VAE, likelihood, obs_var, activation, n=n, seed=seed)
    eps = 0.5 * np.random.default_rng(seed + 10).standard_normal((k, n, model.latent_dim))
    return model, x, eps[0] if k == 1 else eps


def run(model, x, eps, objective, k, beta=1.0, trace=None):
    return loss_and_grads(model, x, objective=objective, k=k, beta=beta, eps=eps, trace=trace)


def loss_closure(model, x, eps, objective, k, beta=1.0):
    """() -> (loss, grads), as the gradient-check helpers take it."""
    def compute():
        terms, grads = run(model, x, eps, objective, k, beta)
        return terms["loss"], grads
    return compute


# ------------------------------------------------- an independent reference --

def reference_loss(model, x, z, mu, logvar, objective, beta=1.0, out=None):
    """The objective's loss from z (k, N, L), mu, logvar (N, L), computed with
    scipy, each argument independent (for partial derivatives).  ``out``, the
    decoder output (k, N, K), is computed from z unless given."""
    k, n, latent = z.shape
    if out is None:
        out = model.decoder.forward(model.params, z.reshape(k * n, latent))[0].reshape(k, n, -1)
    lik = model.likelihood
    obs_var = getattr(lik, "obs_var", 1.0)
    logpx = np.stack([log_likelihood_by_hand(lik.name, obs_var, x, out[j]) for j in range(k)])
    logpz = stats.norm.logpdf(z).sum(axis=-1)
    logq = stats.norm.logpdf(z, mu, np.exp(logvar / 2)).sum(axis=-1)
    if objective == "elbo":
        return np.mean(-logpx.mean(axis=0) + beta * kl_by_hand(mu, logvar))
    if objective == "elbo-mc":
        return np.mean(-logpx + beta * (logq - logpz))
    return -np.mean(logsumexp(logpx + logpz - logq, axis=0) - np.log(k))


# ------------------------------------------------------- parameter gradients --

@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize("objective, k, beta", [("elbo", 1, 1.0), ("elbo", 3, 0.7),
                                                ("elbo-mc", 1, 1.0), ("elbo-mc", 3, 1.6),
                                                ("iwae", 1, 1.0), ("iwae", 4, 1.0)])
def test_every_parameter_gradient_matches_numerical(likelihood, obs_var, objective, k, beta):
    model, x, eps = setup(likelihood, obs_var, k)
    errors = model_grad_errors(model, loss_closure(model, x, eps, objective, k, beta))
    assert set(errors) == set(model.params)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_iwae_gradients_with_other_activations(likelihood, obs_var, activation):
    """Checked along a random direction per tensor (directional_errors): entry by
    entry, a few decoder weights' gradients here are ~5e-6, below what central
    differences of a 6-nat loss resolve (3e-11 absolute, see gradcheck_helpers)."""
    model, x, eps = setup(likelihood, obs_var, 5, activation=activation)
    for e in eps:
        assert_away_from_kinks(model, x, e)
    errors = directional_errors(model, loss_closure(model, x, eps, "iwae", 5),
                                np.random.default_rng(0))
    assert max(errors.values()) <= TOL, errors


# ---------------------------------------------------- intermediate gradients --

@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize("objective, k, beta", [("elbo", 2, 0.7), ("elbo-mc", 2, 1.6),
                                                ("iwae", 3, 1.0)])
def test_every_intermediate_gradient_matches_numerical(likelihood, obs_var, objective, k, beta):
    """dL/d(decoder output), dL/dz, the direct partials dL/dmu and dL/dlogvar at
    fixed z, and the totals through z = mu + exp(logvar/2) eps, each against
    central differences of the scipy reference."""
    model, x, eps = setup(likelihood, obs_var, k)
    trace = {}
    terms, _ = run(model, x, eps, objective, k, beta, trace)
    mu, logvar, z = trace["mu"].copy(), trace["logvar"].copy(), trace["z"].copy()
    out = trace["decoder_out"].copy()
    assert terms["loss"] == pytest.approx(reference_loss(model, x, z, mu, logvar, objective, beta),
                                          rel=1e-12)

    def loss_at(**given):
        args = {"z": z, "mu": mu, "logvar": logvar, **given}
        return reference_loss(model, x, args["z"], args["mu"], args["logvar"], objective, beta,
                              out=given.get("out"))

    numerical = {
        "ddecoder_out": numerical_gradient(lambda: loss_at(out=out), out),
        "dz": numerical_gradient(lambda: loss_at(), z),
        "dmu_direct": numerical_gradient(lambda: loss_at(), mu),
        "dlogvar_direct": numerical_gradient(lambda: loss_at(), logvar),
    }
    numerical["dmu"] = numerical_gradient(
        lambda: loss_at(z=mu + np.exp(logvar / 2) * eps.reshape(k, *mu.shape)), mu)
    numerical["dlogvar"] = numerical_gradient(
        lambda: loss_at(z=mu + np.exp(logvar / 2) * eps.reshape(k, *mu.shape)), logvar)
    if objective == "elbo":   # the closed-form KL's gradient, nothing from the reconstruction
        np.testing.assert_allclose(trace["dmu_direct"], beta / x.shape[0] * mu, rtol=1e-14)
    for name, value in numerical.items():
        assert relative_error(trace[name], value) <= TOL, name
    np.testing.assert_array_equal(trace["dencoder_out"],
                                  np.concatenate([trace["dmu"], trace["dlogvar"]], axis=1))
    np.testing.assert_allclose(trace["dmu"], trace["dmu_via_z"] + trace["dmu_direct"], rtol=1e-15)


# ------------------------------------------------------------------- values --

@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_k1_iwae_is_estimator_a(likelihood, obs_var):
    model, x, eps = setup(likelihood, obs_var, 1)
    (a, grads_a), (b, grads_b) = run(model, x, eps, "elbo-mc", 1), run(model, x, eps, "iwae", 1)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-14)
    np.testing.assert_array_equal(grads_a.flat, grads_b.flat)


@pytest.mark.parametrize("objective", ["elbo", "elbo-mc"])
def test_k_samples_are_the_mean_of_k_one_sample_estimates(objective):
    model, x, eps = setup("bernoulli", 1.0, 4)
    terms, grads = run(model, x, eps, objective, 4, beta=0.8)
    singles = [run(model, x, eps[j], objective, 1, beta=0.8) for j in range(4)]
    assert terms["loss"] == pytest.approx(np.mean([t["loss"] for t, _ in singles]), rel=1e-13)
    np.testing.assert_allclose(grads.flat, np.mean([g.flat for _, g in singles], axis=0),
                               rtol=1e-10, atol=1e-15)


def test_sampled_kl_averages_to_the_closed_form():
    """Over many eps, estimator A's KL term (log q - log p(z) at the sampled z)
    has the closed-form KL as its mean: the two losses agree within 4 standard errors."""
    model, x, _ = small_model(VAE, "bernoulli", 1.0, "tanh", n=3)
    k = 20000
    eps = np.random.default_rng(7).standard_normal((k, 3, model.latent_dim))
    trace = {}
    a, _ = run(model, x, eps, "elbo-mc", k, trace=trace)
    b, _ = run(model, x, eps, "elbo", k)
    assert a["recon"] == b["recon"]
    mu, logvar = trace["mu"], trace["logvar"]
    kl_samples = (stats.norm.logpdf(trace["z"], mu, np.exp(logvar / 2))
                  - stats.norm.logpdf(trace["z"])).sum(axis=-1).mean(axis=1)       # (k,)
    stderr = kl_samples.std() / np.sqrt(k)
    assert abs(a["kl"] - b["kl"]) < 4 * stderr
    assert b["kl"] == pytest.approx(np.mean(kl_by_hand(mu, logvar)), rel=1e-14)


def test_iwae_bound_is_a_logmeanexp_of_the_weights():
    """L_k = log (1/k) sum_j w_j, here computed as the log of a plain mean of
    exp(log w) (safe at these sizes) from the scipy log-densities."""
    model, x, eps = setup("gaussian", "learned", 6)
    trace = {}
    terms, _ = run(model, x, eps, "iwae", 6, trace=trace)
    w = np.exp(trace["logw"])
    assert terms["loss"] == pytest.approx(-np.mean(np.log(np.mean(w, axis=0))), rel=1e-12)
    np.testing.assert_allclose(trace["weights"], w / w.sum(axis=0), rtol=1e-12)


def test_iwae_bound_rises_with_k_on_a_trained_model():
    """E[L_1] <= E[L_5] <= E[L_50] <= log p(x) (Burda et al. Theorem 1), on a model
    trained for a few hundred steps, each expectation over 200 draws of eps."""
    rng = np.random.default_rng(0)
    model = VAE(8, (16,), 2, activation="tanh", dtype=np.float64, seed=0)
    protos = rng.random((4, 8)) < 0.5
    data = (protos[rng.integers(0, 4, 256)] ^ (rng.random((256, 8)) < 0.1)).astype(np.float64)
    opt = Adam(model.params, lr=1e-2)
    for _ in range(300):
        opt.step(model.loss_and_grads(data[rng.integers(0, 256, 32)], rng=rng)[1])
    x = data[:20]
    bounds = [-np.mean([run(model, x, rng.standard_normal((k, 20, 2)) if k > 1
                            else rng.standard_normal((20, 2)), "iwae", k)[0]["loss"]
                        for _ in range(200)])
              for k in (1, 5, 50)]
    exact = np.mean(importance_weighted_log_likelihood_fast(model, x, 20000, rng))
    assert bounds[0] < bounds[1] < bounds[2] < exact + 0.01, (bounds, exact)


def test_iwae_is_stable_for_log_weights_of_any_size():
    """log-weights near -1e6 (a narrow Gaussian decoder far from the data):
    the bound is finite and the normalised weights sum to 1."""
    model = VAE(4, (3,), 2, likelihood="gaussian", obs_var=1e-4, dtype=np.float64, seed=0)
    x = np.full((2, 4), 30.0)
    trace = {}
    terms, grads = loss_and_grads(model, x, objective="iwae", k=7, rng=np.random.default_rng(0),
                                  trace=trace)
    assert trace["logw"].max() < -1e5
    assert np.isfinite(terms["loss"]) and np.all(np.isfinite(grads.flat))
    np.testing.assert_allclose(trace["weights"].sum(axis=0), 1.0, rtol=1e-14)


# --------------------------------------------------------------- wake-sleep --

@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_wake_sleep_gradients(likelihood, obs_var):
    """The decoder's gradient is that of the wake loss -mean log p(x|z) at z ~ q(z|x)
    (eps fixed); the encoder's is that of the sleep loss -mean log q(z|x) on the
    dream (z, x) ~ p(z) p(x|z) (rng reseeded, so the dream is the same)."""
    model, x, eps = setup(likelihood, obs_var, 1)

    def wake_sleep():
        return loss_and_grads(model, x, objective="wake-sleep", eps=eps,
                              rng=np.random.default_rng(3))

    terms, grads = wake_sleep()
    wake_loss = lambda: wake_sleep()[0]["recon"]  # noqa: E731
    sleep_loss = lambda: sleep_phase(model, 3, np.random.default_rng(3),  # noqa: E731
                                     model.params.zeros_like())
    for name, p in model.params.items():
        phase = wake_loss if name.startswith("decoder") else sleep_loss
        assert relative_error(grads[name], numerical_gradient(phase, p)) <= TOL, name
    # progress is reported as estimator B's -ELBO at the wake sample
    assert terms == run(model, x, eps, "elbo", 1)[0]


def test_wake_sleep_dreams_x_from_the_likelihood_not_its_mean():
    model, x, eps = setup("bernoulli", 1.0, 1)
    trace = {}
    loss_and_grads(model, x, objective="wake-sleep", eps=eps, rng=np.random.default_rng(0),
                   trace=trace)
    assert set(np.unique(trace["x_dream"])) <= {0.0, 1.0}
    assert trace["z_dream"].shape == (3, model.latent_dim)


def test_samplers_draw_from_the_likelihood():
    rng = np.random.default_rng(0)
    logits = np.array([[-2.0, 0.0, 3.0]])
    draws = BernoulliLikelihood().sample(np.repeat(logits, 40000, axis=0), rng)
    np.testing.assert_allclose(draws.mean(axis=0), 1 / (1 + np.exp(-logits[0])), atol=0.01)
    out = np.repeat([[1.0, -2.0, np.log(0.25), np.log(4.0)]], 40000, axis=0)
    draws = GaussianLikelihood("learned").sample(out, rng)
    np.testing.assert_allclose(draws.mean(axis=0), [1.0, -2.0], atol=0.03)
    np.testing.assert_allclose(draws.var(axis=0), [0.25, 4.0], rtol=0.03)
    assert draws.dtype == np.float64


# ------------------------------------------------------------------- the API --

def test_model_api_names_every_objective():
    model, x, _ = setup("bernoulli", 1.0, 1)
    rng = np.random.default_rng(0)
    for objective in OBJECTIVES:
        loss, grads = model.loss_and_grads(x, rng=rng, objective=objective)
        assert np.isfinite(loss) and grads.same_layout(model.params)
    eps = rng.standard_normal((5, 3, 2))
    loss, _ = model.loss_and_grads(x, eps=eps, objective="iwae", k=5)
    assert loss == run(model, x, eps, "iwae", 5)[0]["loss"]


@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
@pytest.mark.parametrize("objective, k", [("elbo", 1), ("elbo", 3), ("elbo-mc", 2), ("iwae", 4),
                                          ("wake-sleep", 1)])
def test_the_backward_pass_writes_every_gradient_entry(likelihood, obs_var, objective, k):
    """The gradient buffer needs no zeroing: a buffer ``out`` filled with NaN comes
    back finite and equal to a fresh one's gradients, so every entry is written
    (none left over, none accumulated into).  trainer.TrainingStep reuses one
    buffer across steps on the strength of this."""
    model, x, _ = setup(likelihood, obs_var, k)
    out = model.params.zeros_like()
    out.flat[:] = np.nan
    terms, grads = loss_and_grads(model, x, objective=objective, k=k,
                                  rng=np.random.default_rng(4), out=out)
    assert grads is out and np.all(np.isfinite(out.flat))
    fresh_terms, fresh = loss_and_grads(model, x, objective=objective, k=k,
                                        rng=np.random.default_rng(4))
    assert terms == fresh_terms
    np.testing.assert_array_equal(out.flat, fresh.flat)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"objective": "elbo2"}, ValueError, "objective must be one of"),
    ({"k": 0}, ValueError, "k must be an integer >= 1, got 0"),
    ({"k": 2.5}, TypeError, "k must be an integer, got 2.5"),
    ({"k": 3, "eps": np.zeros((3, 2))}, ValueError,
     r"eps must be an array of shape \(3, 3, 2\) for k=3"),
    ({"k": 1, "eps": np.zeros((1, 3, 2))}, ValueError,
     r"eps must be an array of shape \(3, 2\) for k=1"),
    ({"objective": "iwae", "k": 2, "beta": 0.5}, ValueError,
     "objective iwae has no KL weight: beta must be 1, got 0.5"),
    ({"objective": "wake-sleep", "k": 2}, ValueError,
     "wake-sleep draws one z per example and weights nothing: k must be 1, got 2"),
    ({"objective": "wake-sleep", "beta": 2.0}, ValueError,
     "objective wake-sleep has no KL weight: beta must be 1, got 2.0"),
    ({"objective": "wake-sleep", "rng": None, "eps": np.zeros((3, 2))}, TypeError,
     "rng must be a numpy.random.Generator"),
])
def test_bad_arguments_name_the_argument(kwargs, error, message):
    model, x, _ = setup("bernoulli", 1.0, 1)
    kwargs = {"rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(error, match=message):
        model.loss_and_grads(x, **kwargs)


@pytest.mark.parametrize("beta, error", [(np.nan, ValueError), (np.inf, ValueError),
                                         (-0.5, ValueError), ("1", TypeError)])
def test_beta_must_be_a_finite_number_at_least_zero(beta, error):
    model, x, eps = setup("bernoulli", 1.0, 1)
    with pytest.raises(error, match="beta must be a"):
        loss_and_grads(model, x, objective="elbo", beta=beta, eps=eps)
