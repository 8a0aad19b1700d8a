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
those are gaussian.py's, on (mu, logvar); here they are FullCovariancePosterior's,
on (mu, [log_diag, lower]).  Derivations: docs/full_covariance.md.
"""

import numpy as np

from numpyvae.model.vae import VAE
from numpyvae.ops import full_gaussian


class FullCovariancePosterior:
    """The posterior ops of FullCovarianceVAE on the encoder's raw outputs: each
    is a full_gaussian op on L after full_gaussian.factor_forward, and its backward
    carries dL back through factor_backward.

    ``scale`` is the encoder output after mu, [log_diag, lower] (N, n(n+1)/2);
    the signatures are gaussian.py's with ``scale`` in place of ``logvar``.
    """

    @staticmethod
    def factor_forward(scale, n):
        """[log_diag, lower] (..., n(n+1)/2) -> L (..., n, n), the factor's cache."""
        return full_gaussian.factor_forward(scale[..., :n], scale[..., n:])

    @staticmethod
    def factor_backward(dfactor, factor_cache):
        """dL (..., n, n) -> d[log_diag, lower] (..., n(n+1)/2)."""
        dlog_diag, dlower = full_gaussian.factor_backward(dfactor, factor_cache)
        return np.concatenate([dlog_diag, dlower], axis=-1)

    @staticmethod
    def reparameterize_forward(mu, scale, eps):
        """z = mu + L eps: mu (N, n), scale (N, n(n+1)/2), eps (k, N, n) -> z (k, N, n)."""
        factor, factor_cache = FullCovariancePosterior.factor_forward(scale, mu.shape[-1])
        z, rep_cache = full_gaussian.reparameterize_forward(mu, factor, eps)
        return z, (rep_cache, factor_cache)

    @staticmethod
    def reparameterize_backward(dz, cache):
        """dz (k, N, n) -> (dmu (k, N, n), dscale (k, N, n(n+1)/2)), per sample."""
        rep_cache, factor_cache = cache
        dmu, dfactor = full_gaussian.reparameterize_backward(dz, rep_cache)
        return dmu, FullCovariancePosterior.factor_backward(dfactor, factor_cache)

    @staticmethod
    def log_density_at_sample_forward(eps, scale):
        """log q(z|x) at z = mu + L eps: eps (k, N, n), scale (N, n(n+1)/2) -> (k, N)."""
        factor, factor_cache = FullCovariancePosterior.factor_forward(scale, eps.shape[-1])
        logq, q_cache = full_gaussian.log_density_at_sample_forward(eps, factor)
        return logq, (q_cache, factor_cache)

    @staticmethod
    def log_density_at_sample_backward(dlogq, cache):
        """dlogq (k, N) -> the partials (dz, dmu, dscale), (k, N, .) each."""
        q_cache, factor_cache = cache
        dz, dmu, dfactor = full_gaussian.log_density_at_sample_backward(dlogq, q_cache)
        return dz, dmu, FullCovariancePosterior.factor_backward(dfactor, factor_cache)

    @staticmethod
    def kl_standard_normal_forward(mu, scale):
        """KL(N(mu, L L^T) || N(0, I)): mu (N, n), scale (N, n(n+1)/2) -> (N,)."""
        factor, factor_cache = FullCovariancePosterior.factor_forward(scale, mu.shape[-1])
        kl, kl_cache = full_gaussian.kl_standard_normal_forward(mu, factor)
        return kl, (kl_cache, factor_cache)

    @staticmethod
    def kl_standard_normal_backward(dkl, cache):
        """dkl (N,) -> (dmu (N, n), dscale (N, n(n+1)/2))."""
        kl_cache, factor_cache = cache
        dmu, dfactor = full_gaussian.kl_standard_normal_backward(dkl, kl_cache)
        return dmu, FullCovariancePosterior.factor_backward(dfactor, factor_cache)


class FullCovarianceVAE(VAE):
    """VAE whose encoder outputs [mu, log_diag, lower] (N, 2n + n(n-1)/2), q(z|x) = N(mu, L L^T).

    Constructor: see encoder_decoder.EncoderDecoder.  Trains with 'elbo'
    (the KL in closed form), 'elbo-mc' and 'iwae'; wake-sleep's sleep phase
    is written for the diagonal posterior only.
    """

    kind = "vae-full-covariance"
    posterior = FullCovariancePosterior
    trainable_objectives = ("elbo", "elbo-mc", "iwae")

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
