"""Exercise 12: the VAE loss, normalised the way numpyvae normalises it.

For a batch of N examples x (N, D), the decoder's logits at the sampled z
(N, D), and the encoder's output mu, logvar (N, L):

    loss = (1/N) sum_n [ -log p(x_n|z_n) + KL(q(z|x_n) || N(0, I)) ]     nats per example

    -log p(x_n|z_n) = sum_d [ softplus(l_nd) - x_nd * l_nd ]              a SUM over the D pixels
    KL_n = 1/2 * sum_l [ exp(logvar_nl) + mu_nl^2 - 1 - logvar_nl ]       a SUM over the L latents

Write vae_loss: return this loss as a float (beta = 1).

Hints (docs/normalisation.md: what a mean over pixels, a sum over the batch
or a division by N does, and why):
  * Sum over pixels and latent dimensions, average over the batch, once.
  * The loss is minimised, so both terms enter with a + sign; the KL is >= 0.
  * logvar is log sigma^2: the variance is exp(logvar), the standard
    deviation exp(logvar / 2).
  * A Bernoulli log-likelihood has no log(2 pi); write it on the logits with
    softplus below, which never takes the log of 0.

The checker evaluates your function on inputs where the two terms can be
told apart, fits the weight of each, and names what it finds.

Check your answer:  python exercises/check.py normalisation
"""

import numpy as np


def softplus(logits):
    """log(1 + exp(l)), computed without overflow."""
    return np.logaddexp(0.0, logits)


def vae_loss(x, logits, mu, logvar):
    """x (N, D) in [0, 1], logits (N, D), mu and logvar (N, L) -> the loss, a float."""
    # TODO: the reconstruction term and the KL term, summed and averaged as above.
    raise NotImplementedError("TODO: vae_loss")
