"""Exercise 9: one VAE step, where the reconstruction path and the KL path meet.

For a batch x (N, D) and fixed noise eps (N, L):

    [mu, logvar] = encoder(x)                 (N, 2L)
    z = mu + exp(logvar / 2) * eps            (N, L)
    out = decoder(z)                          the decoder's output, e.g. Bernoulli logits
    loss = (1/N) sum_n [ -log p(x_n|z_n) + beta * KL(q(z|x_n) || N(0, I)) ]

The forward is written below with the library's forward functions.  Write
vae_backward with the library's backward functions (each one is checked in
demos/gradcheck.py; exercises 5 to 8 are their textbook forms): return the
gradient of the loss for every parameter of the model.

Hints (docs/backprop_mlp.md, section 4, derives this backward pass line by
line; docs/elbo.md, section 5, the loss):
  * Start at the loss: dL/dlog p(x_n|z_n) and dL/dKL_n, one number per example.
    The mean over the batch is where the 1/N goes; beta weighs the KL.
  * The reconstruction path: likelihood -> decoder -> z -> (mu, logvar)
    through reparameterize_backward.
  * The KL path reaches mu and logvar directly (kl_standard_normal_backward).
  * The encoder sees the sum of both paths, as one (N, 2L) array [dmu, dlogvar].
  * model.decoder.backward(grads, dout, cache) and model.encoder.backward(...)
    write the parameters' gradients into ``grads`` and return the gradient of
    their input (pass need_dx=False to the encoder: its input is data).

Check your answer:  python exercises/check.py vae_step
"""

import numpy as np

from numpyvae.ops.gaussian import (kl_standard_normal_backward, kl_standard_normal_forward,
                               reparameterize_backward, reparameterize_forward)


def vae_forward(model, x, eps, beta):
    """The loss (a float, nats per example) and a cache for vae_backward."""
    latent = model.latent_dim
    h, enc_cache = model.encoder.forward(model.params, x)              # (N, 2L)
    mu, logvar = h[:, :latent], h[:, latent:]
    z, rep_cache = reparameterize_forward(mu, logvar, eps)             # (N, L)
    out, dec_cache = model.decoder.forward(model.params, z)            # (N, K)
    logpx, lik_cache = model.likelihood.log_prob_forward(x, out)       # (N,)
    kl, kl_cache = kl_standard_normal_forward(mu, logvar)              # (N,)
    loss = float(np.mean(-logpx + beta * kl))
    return loss, (x.shape[0], beta, enc_cache, rep_cache, dec_cache, lik_cache, kl_cache)


def vae_backward(model, cache):
    """The gradients of vae_forward's loss: a dict with the keys and shapes of model.params."""
    n, beta, enc_cache, rep_cache, dec_cache, lik_cache, kl_cache = cache
    grads = model.params.zeros_like()
    # TODO: the two paths to [dmu, dlogvar], then the encoder; use
    # model.likelihood.log_prob_backward, model.decoder.backward,
    # reparameterize_backward, kl_standard_normal_backward, model.encoder.backward.
    raise NotImplementedError("TODO: vae_backward")
