"""The variational autoencoder of Kingma & Welling (2014).

Forward pass for a batch x (N, D), one sample of z per example:

    [mu, logvar] = encoder(x)                    (N, L) each     q(z|x) = N(mu, diag(exp(logvar)))
    z = mu + exp(logvar / 2) * eps               (N, L)          eps ~ N(0, I)   gaussian.reparameterize_forward
    log p(x|z)                                   (N,)            likelihoods.*.log_prob_forward
    KL(q(z|x) || N(0, I))                        (N,)            gaussian.kl_standard_normal_forward
    loss = mean_n [ -log p(x_n|z_n) + beta * KL_n ]              -ELBO in nats per example (beta = 1)

The backward pass runs the same chain in reverse.  The two terms meet at
the encoder output: mu and logvar get gradient from the reconstruction term
through z (reparameterize_backward) and from the KL term directly.
"""

import numpy as np

from numpyvae.autoencoder import Autoencoder
from numpyvae.gaussian import (kl_standard_normal_backward, kl_standard_normal_forward,
                               reparameterize_backward, reparameterize_forward)


class VAE(Autoencoder):
    """Gaussian-encoder VAE; the encoder's last layer outputs [mu, logvar] (N, 2L).

    Same constructor as Autoencoder.
    """

    kind = "vae"

    def _encoder_outputs(self):
        return 2 * self.latent_dim

    def encode(self, x):
        """x (N, D) -> (mu, logvar), each (N, L): the parameters of q(z|x)."""
        self.check_input(x)
        h = self.encoder.forward(self.params, x)[0]
        return h[:, :self.latent_dim], h[:, self.latent_dim:]

    def reconstruct(self, x):
        """x (N, D) -> mean of p(x | z = mu(x)) (N, D), the posterior mean as code."""
        return self.decode(self.encode(x)[0])

    def sample(self, n, rng):
        """n draws z ~ N(0, I) decoded: the means of p(x|z), (n, D)."""
        return self.decode(rng.standard_normal((n, self.latent_dim), dtype=self.dtype))

    def _draw_eps(self, n, rng, eps):
        if eps is None:
            if rng is None:
                raise ValueError("pass rng= (a numpy.random.Generator) or eps= (N, latent_dim)")
            return rng.standard_normal((n, self.latent_dim), dtype=self.dtype)
        self.check_input(eps, "eps", self.latent_dim, data=False)
        if eps.shape[0] != n:
            raise ValueError(f"eps must have shape ({n}, {self.latent_dim}), got {eps.shape}")
        return eps

    def _forward(self, x, rng, eps):
        """The forward pass: per-example log p(x|z) (N,) and KL (N,), with caches."""
        self.check_input(x)
        eps = self._draw_eps(x.shape[0], rng, eps)
        h, enc_cache = self.encoder.forward(self.params, x)
        mu, logvar = h[:, :self.latent_dim], h[:, self.latent_dim:]
        z, rep_cache = reparameterize_forward(mu, logvar, eps)
        logpx, dec_cache = self.decoder_forward(x, z)
        kl, kl_cache = kl_standard_normal_forward(mu, logvar)
        return logpx, kl, (enc_cache, rep_cache, dec_cache, kl_cache)

    def elbo_terms(self, x, rng=None, eps=None):
        """Per-example (log p(x|z), KL) for one z per example, no gradients; (N,) each."""
        logpx, kl, _ = self._forward(x, rng, eps)
        return logpx, kl

    def loss_terms_and_grads(self, x, rng=None, beta=1.0, eps=None, out=None):
        """``loss_and_grads`` that also returns the two terms.

        Returns ``((loss, recon, kl), grads)``: batch means of -ELBO_beta,
        -log p(x|z) and KL, as floats in nats per example.
        """
        logpx, kl, (enc_cache, rep_cache, dec_cache, kl_cache) = self._forward(x, rng, eps)
        n = x.shape[0]
        recon, kl_mean = -float(np.mean(logpx)), float(np.mean(kl))
        grads = self._grad_buffer(out)
        # L = (1/N) sum_n [-logpx_n + beta * kl_n]:  dL/dlogpx_n = -1/N, dL/dkl_n = beta/N
        dz = self.decoder_backward(np.full(n, -1.0 / n, dtype=self.dtype), dec_cache, grads)
        dmu, dlogvar = reparameterize_backward(dz, rep_cache)
        dmu_kl, dlogvar_kl = kl_standard_normal_backward(np.full(n, beta / n, dtype=self.dtype),
                                                         kl_cache)
        dh = np.concatenate([dmu + dmu_kl, dlogvar + dlogvar_kl], axis=1)
        self.encoder.backward(grads, dh, enc_cache, need_dx=False)
        return (recon + beta * kl_mean, recon, kl_mean), grads

    def loss_and_grads(self, x, rng=None, beta=1.0, eps=None, out=None):
        """Mean -ELBO (with the KL weighted by ``beta``) over the batch and its gradients.

        x : (N, D) of the model's dtype; one z per example, drawn with ``rng``
        or given as ``eps`` (N, L).  Returns ``(loss, grads)``: a float in nats
        per example and a FlatParams with the keys and shapes of ``params``
        (written into ``out`` if given, e.g. ``model.params.zeros_like()``).
        """
        (loss, _, _), grads = self.loss_terms_and_grads(x, rng, beta, eps, out)
        return loss, grads

    def log_likelihood(self, x, k=5000, rng=None, batch_elements=2 ** 20):
        """Importance-weighted estimate of log p(x) per example, (N,) nats.

        See evaluate.importance_weighted_log_likelihood.
        """
        from numpyvae.evaluate import importance_weighted_log_likelihood
        return importance_weighted_log_likelihood(self, x, k, rng, batch_elements)
