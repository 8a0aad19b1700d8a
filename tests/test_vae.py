"""The VAE end to end: every parameter gradient, the loss value, beta, batching.

Gradient checks (float64, TOL) run on small models: 4 inputs, one hidden
layer of 3, 2 latents, 2 examples, with eps held fixed so the loss is a
deterministic function of the parameters.  A loss of a few nats keeps the
central-difference reference accurate to ~3e-11 (see gradcheck_helpers).
"""

import numpy as np
import pytest

from gradcheck_helpers import (ACTIVATIONS, DECODER_IDS, DECODERS, TOL, directional_errors,
                               kl_by_hand, log_likelihood_by_hand, loss_fn, model_grad_errors,
                               small_model)
from numpyvae import VAE


def small_vae(likelihood, obs_var, activation, **kwargs):
    return small_model(VAE, likelihood, obs_var, activation, **kwargs)


# -------------------------------------------------------------- gradients --

@pytest.mark.parametrize("beta", [0.5, 2.0])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_every_parameter_gradient_matches_numerical(likelihood, obs_var, activation, beta):
    model, x, eps = small_vae(likelihood, obs_var, activation)
    errors = model_grad_errors(model, loss_fn(model, x, eps, beta))
    assert set(errors) == set(model.params)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_two_hidden_layer_gradients_along_random_directions(likelihood, obs_var, activation):
    """A deeper model (hidden (4, 3)), checked per tensor along random directions
    (one well-scaled number per tensor; entry-by-entry checks of deeper models
    hit entries below the resolution of central differences)."""
    model, x, eps = small_vae(likelihood, obs_var, activation, hidden=(4, 3), n=3, d=5)
    errors = directional_errors(model, loss_fn(model, x, eps, 0.5), np.random.default_rng(0))
    assert len(errors) == 12
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e}"


# ------------------------------------------------------------ loss values --

@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_loss_equals_the_elbo_composed_by_hand(likelihood, obs_var):
    """loss = mean_n [ -log p(x_n | z_n) + beta KL(q(z|x_n) || N(0, I)) ],
    z = mu + exp(logvar / 2) eps, each piece computed here from model.encode,
    the decoder output and scipy."""
    model, x, eps = small_vae(likelihood, obs_var, "tanh", n=5, d=6)
    beta = 2.0
    mu, logvar = model.encode(x)
    z = mu + np.exp(logvar / 2) * eps
    out = model.decoder.forward(model.params, z)[0]
    logpx = log_likelihood_by_hand(likelihood, obs_var, x, out)
    kl = kl_by_hand(mu, logvar)

    loss, _ = model.loss_and_grads(x, eps=eps, beta=beta)
    assert isinstance(loss, float)
    assert loss == pytest.approx(np.mean(-logpx + beta * kl), rel=1e-12)
    (loss2, recon, kl_mean), _ = model.loss_terms_and_grads(x, eps=eps, beta=beta)
    assert (loss2, recon, kl_mean) == pytest.approx((loss, -logpx.mean(), kl.mean()), rel=1e-12)
    elbo_logpx, elbo_kl = model.elbo_terms(x, eps=eps)
    np.testing.assert_allclose(elbo_logpx, logpx, rtol=1e-12)
    np.testing.assert_allclose(elbo_kl, kl, rtol=1e-12)


def test_beta_weights_only_the_kl():
    model, x, eps = small_vae("bernoulli", 1.0, "tanh", n=4, d=5)
    results = {}
    for beta in (0.0, 0.5, 1.0, 2.0):
        (loss, recon, kl), grads = model.loss_terms_and_grads(x, eps=eps, beta=beta)
        results[beta] = (loss, recon, kl, grads.copy())
    recon0, kl0 = results[0.0][1], results[0.0][2]
    g0, g1 = results[0.0][3], results[1.0][3]
    for beta, (loss, recon, kl, grads) in results.items():
        assert (recon, kl) == (recon0, kl0)          # the terms themselves do not depend on beta
        assert loss == pytest.approx(recon0 + beta * kl0, rel=1e-14)
        for name in model.params:
            if name.startswith("decoder."):          # the KL does not involve the decoder
                np.testing.assert_array_equal(grads[name], g0[name])
            else:                                    # gradient is linear in beta
                np.testing.assert_allclose(grads[name], g0[name] + beta * (g1[name] - g0[name]),
                                           rtol=1e-10, atol=1e-15)
    assert not np.allclose(results[2.0][3]["encoder.1.W"], g0["encoder.1.W"])


# ----------------------------------------------------------- vectorization --

@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_batch_is_the_mean_of_single_examples(likelihood, obs_var):
    """Each example run alone with its own row of eps: the batch loss and
    gradients are the means of the per-example ones."""
    model, x, eps = small_vae(likelihood, obs_var, "softplus", n=5, d=6)
    loss, grads = model.loss_and_grads(x, eps=eps, beta=0.5)
    singles = [model.loss_and_grads(x[i:i + 1], eps=eps[i:i + 1], beta=0.5) for i in range(5)]
    assert loss == pytest.approx(np.mean([l for l, _ in singles]), rel=1e-13)
    for name in model.params:
        np.testing.assert_allclose(grads[name], np.mean([g[name] for _, g in singles], axis=0),
                                   rtol=1e-11, atol=1e-15)


# -------------------------------------------------------- other behaviour --

def test_rng_draws_are_reproducible_and_used():
    model, x, _ = small_vae("bernoulli", 1.0, "relu", n=6, d=4)
    l1, g1 = model.loss_and_grads(x, rng=np.random.default_rng(5))
    l2, g2 = model.loss_and_grads(x, rng=np.random.default_rng(5))
    l3, _ = model.loss_and_grads(x, rng=np.random.default_rng(6))
    assert l1 == l2 and np.array_equal(g1.flat, g2.flat)
    assert l1 != l3


def test_grads_written_into_a_given_buffer():
    model, x, eps = small_vae("gaussian", "learned", "relu")
    _, fresh = model.loss_and_grads(x, eps=eps)
    out = model.params.zeros_like()
    out.flat[:] = 7.0                       # stale values must be overwritten, not accumulated
    _, grads = model.loss_and_grads(x, eps=eps, out=out)
    assert grads is out
    np.testing.assert_array_equal(out.flat, fresh.flat)


def test_reconstruct_uses_the_posterior_mean_and_sample_decodes_prior_draws():
    model, x, _ = small_vae("bernoulli", 1.0, "relu", n=3, d=4)
    mu, _ = model.encode(x)
    np.testing.assert_array_equal(model.reconstruct(x), model.decode(mu))
    samples = model.sample(7, np.random.default_rng(3))
    assert samples.shape == (7, 4) and np.all((samples >= 0) & (samples <= 1))
    np.testing.assert_array_equal(samples, model.sample(7, np.random.default_rng(3)))


def test_encoder_outputs_mean_and_logvar_and_decoder_mirrors_it():
    model = VAE(10, (8, 6), 3, "gaussian", "learned", "relu", np.float64, 0)
    shapes = {name: p.shape for name, p in model.params.items()}
    assert shapes == {
        "encoder.0.W": (10, 8), "encoder.0.b": (8,), "encoder.1.W": (8, 6), "encoder.1.b": (6,),
        "encoder.2.W": (6, 6), "encoder.2.b": (6,),                 # [mu, logvar]: 2 * 3
        "decoder.0.W": (3, 6), "decoder.0.b": (6,), "decoder.1.W": (6, 8), "decoder.1.b": (8,),
        "decoder.2.W": (8, 20), "decoder.2.b": (20,)}               # [mean, logvar]: 2 * 10
    mu, logvar = model.encode(np.zeros((2, 10)))
    assert mu.shape == logvar.shape == (2, 3)


def test_different_seeds_give_different_weights_and_same_seed_the_same():
    a, b, c = (VAE(6, (5,), 2, seed=s, dtype=np.float64) for s in (0, 0, 1))
    assert np.array_equal(a.params.flat, b.params.flat)
    assert not np.array_equal(a.params.flat, c.params.flat)


@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_kl_term_matches_model_encoder(likelihood, obs_var):
    """elbo_terms' KL uses only the encoder output: it is eps-independent."""
    model, x, eps = small_vae(likelihood, obs_var, "sigmoid", n=3, d=4)
    kl1 = model.elbo_terms(x, eps=eps)[1]
    kl2 = model.elbo_terms(x, eps=-eps)[1]
    np.testing.assert_array_equal(kl1, kl2)
    np.testing.assert_allclose(kl1, kl_by_hand(*model.encode(x)), rtol=1e-13)

