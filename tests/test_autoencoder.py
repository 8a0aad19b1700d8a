"""The deterministic Autoencoder: gradients, loss value, architecture."""

import numpy as np
import pytest

from gradcheck_helpers import (ACTIVATIONS, DECODER_IDS, DECODERS, TOL, log_likelihood_by_hand,
                               loss_fn, model_grad_errors, small_model)
from numpyvae import VAE, Autoencoder


def small_autoencoder(likelihood, obs_var, activation, **kwargs):
    model, x, _ = small_model(Autoencoder, likelihood, obs_var, activation, **kwargs)
    return model, x


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_every_parameter_gradient_matches_numerical(likelihood, obs_var, activation):
    model, x = small_autoencoder(likelihood, obs_var, activation)
    errors = model_grad_errors(model, loss_fn(model, x))
    assert set(errors) == set(model.params)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOL, f"{worst}: relative error {errors[worst]:.2e}"


@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_loss_is_the_mean_negative_log_likelihood_of_the_code(likelihood, obs_var):
    model, x = small_autoencoder(likelihood, obs_var, "tanh", n=5, d=6)
    z = model.encode(x)
    out = model.decoder.forward(model.params, z)[0]
    loss, grads = model.loss_and_grads(x)
    assert isinstance(loss, float)
    assert loss == pytest.approx(-np.mean(log_likelihood_by_hand(likelihood, obs_var, x, out)),
                                 rel=1e-12)
    assert set(grads) == set(model.params)


def test_reconstruct_is_decode_of_encode():
    model, x = small_autoencoder("bernoulli", 1.0, "relu", n=3)
    np.testing.assert_array_equal(model.reconstruct(x), model.decode(model.encode(x)))
    assert np.all((model.reconstruct(x) >= 0) & (model.reconstruct(x) <= 1))


def test_encoder_outputs_a_point_code_and_shares_the_vae_decoder_layout():
    ae = Autoencoder(10, (8,), 3, "bernoulli", dtype=np.float64)
    vae = VAE(10, (8,), 3, "bernoulli", dtype=np.float64)
    assert ae.params["encoder.1.W"].shape == (8, 3)       # z, not [mu, logvar]
    assert vae.params["encoder.1.W"].shape == (8, 6)
    assert ae.encode(np.zeros((2, 10))).shape == (2, 3)
    decoder = {k: p.shape for k, p in ae.params.items() if k.startswith("decoder.")}
    assert decoder == {k: p.shape for k, p in vae.params.items() if k.startswith("decoder.")}


@pytest.mark.parametrize("likelihood, obs_var", DECODERS, ids=DECODER_IDS)
def test_the_backward_pass_writes_every_gradient_entry(likelihood, obs_var):
    """A NaN-filled ``out`` comes back equal to a fresh buffer's gradients: every
    entry is written, so the buffer needs no zeroing (see test_objectives.py)."""
    model, x = small_autoencoder(likelihood, obs_var, "tanh")
    out = model.params.zeros_like()
    out.flat[:] = np.nan
    loss, grads = model.loss_and_grads(x, out=out)
    assert grads is out
    np.testing.assert_array_equal(out.flat, model.loss_and_grads(x)[1].flat)
