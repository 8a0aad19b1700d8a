"""The VAE with a full-covariance Gaussian posterior q(z|x) = N(mu, L L^T).

Forward pass for a batch x (N, D), k samples of z per example:

    [mu, log_diag, lower] = encoder(x)     (N, n), (N, n), (N, n(n-1)/2)    E = 2n + n(n-1)/2
    L = factor(log_diag, lower)            (N, n, n)      L_ii = exp(log_diag_i), L_ij = lower (i > j)
    z = mu + L eps                         (k, N, n)      eps ~ N(0, I)     full_gaussian.reparameterize_forward
    log p(x|z)                             (k, N)         as for the VAE
    KL(q(z|x) || N(0, I))                  (N,)           full_gaussian.kl_standard_normal_forward
    log q(z|x)                             (k, N)         full_gaussian.log_density_at_sample_forward

Everything else (the decoder, the prior, the objectives 'elbo', 'elbo-mc'
and 'iwae', the importance-weighted log p(x), saving) is the VAE's: the
objectives reach the posterior only through ``model.posterior``, whose five
forward/backward pairs take (mu, the encoder's other outputs).  For the VAE
those are gaussian.py's, on (mu, logvar); here they are full_gaussian.Posterior's,
on (mu, [log_diag, lower]).  Derivations: docs/full_covariance.md.
"""

import numpy as np

from numpyvae.model.vae import VAE
from numpyvae.ops import full_gaussian


class FullCovarianceVAE(VAE):
    """VAE whose encoder outputs [mu, log_diag, lower] (N, 2n + n(n-1)/2), q(z|x) = N(mu, L L^T).

    Constructor: see encoder_decoder.EncoderDecoder.  The weights are
    initialised as for the VAE, except that the columns of the encoder's output
    layer that produce ``lower`` start at zero: q(z|x) starts diagonal, as the
    VAE's does (with random ones, Var z_i = sum_j L_ij^2 would start growing
    with i).  Trains with 'elbo' (the KL in closed form), 'elbo-mc' and
    'iwae'; wake-sleep's sleep phase is written for the diagonal posterior only.
    """

    kind = "vae-full-covariance"
    posterior = full_gaussian.Posterior
    trainable_objectives = ("elbo", "elbo-mc", "iwae")

    def __init__(self, input_dim, hidden_dims=(400,), latent_dim=20, likelihood="bernoulli",
                 obs_var=1.0, activation="relu", dtype=np.float32, seed=0, textbook=False):
        super().__init__(input_dim, hidden_dims, latent_dim, likelihood, obs_var, activation,
                         dtype, seed, textbook)
        w_out, _ = self.encoder.layer_params(self.params, -1)      # (H, 2n + n(n-1)/2)
        w_out[:, 2 * self.latent_dim:] = 0                          # lower = 0 (biases are 0)

    def encoder_outputs(self):
        return self.latent_dim + self.latent_dim * (self.latent_dim + 1) // 2

    def encode(self, x):
        """x (N, D) -> (mu (N, n), scale (N, n(n+1)/2)): the mean and the raw
        [log_diag, lower] of q(z|x); ``encode_factor`` turns scale into L."""
        return super().encode(x)

    def encode_factor(self, x):
        """x (N, D) -> (mu (N, n), L (N, n, n)): q(z|x) = N(mu, L L^T)."""
        mu, scale = self.encode(x)
        return mu, self.posterior.factor_forward(scale, self.latent_dim)[0]
