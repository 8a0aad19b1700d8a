"""The variational autoencoder of Kingma & Welling (2014): the model.

Forward pass for a batch x (N, D), one sample of z per example:

    [mu, logvar] = encoder(x)                    (N, L) each     q(z|x) = N(mu, diag(exp(logvar)))
    z = mu + exp(logvar / 2) * eps               (N, L)          eps ~ N(0, I)   gaussian.reparameterize_forward
    log p(x|z)                                   (N,)            likelihoods.*.log_prob_forward
    KL(q(z|x) || N(0, I))                        (N,)            gaussian.kl_standard_normal_forward
    loss = mean_n [ -log p(x_n|z_n) + beta * KL_n ]              -ELBO in nats per example (beta = 1)

The model holds the networks and the likelihood; the losses it trains with,
and their backward passes, are objectives.py (the ELBO with the KL in closed
form, as above, by default; the sampled KL, k samples, the IWAE bound and
wake-sleep on request).  What the VAE shares with the plain autoencoder is
model/encoder_decoder.py.  Evaluating a trained model (log p(x) by
importance sampling, the ELBO over a data set, active units) is evaluate.py.
"""

import numpy as np

from numpyvae import objectives
from numpyvae.model.encoder_decoder import EncoderDecoder
from numpyvae.ops import gaussian
from numpyvae.util.validate import check_generator, check_positive_int


class VAE(EncoderDecoder):
    """Gaussian-encoder VAE; the encoder's last layer outputs [mu, logvar] (N, 2L).

    Constructor: see encoder_decoder.EncoderDecoder.  ``posterior`` is where
    the objectives find q(z|x)'s operations on (mu, logvar): ops/gaussian.py
    (FullCovarianceVAE replaces it); ``trainable_objectives`` the objectives
    it trains with; ``objectives`` the module whose loss_and_grads and
    objective_loss_and_grads train it.
    """

    kind = "vae"
    posterior = gaussian
    trainable_objectives = objectives.OBJECTIVES
    objectives = objectives

    @property
    def noise_dim(self):
        """Entries of eps per sample of z: L."""
        return self.latent_dim

    def encoder_outputs(self):
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
        """n >= 1 draws z ~ N(0, I), from the Generator ``rng``, decoded: the means of p(x|z), (n, D)."""
        n = check_positive_int(n, "n")
        z = check_generator(rng).standard_normal((n, self.latent_dim), dtype=self.dtype)
        return self.decode(z)

    def elbo_terms(self, x, rng=None, eps=None):
        """Per-example (log p(x|z), KL) for one z per example, no gradients; (N,) each
        (objectives.elbo_terms, with the input and the noise checked).

        x (N, D); the noise from ``rng`` or ``eps`` (N, L).  NonFiniteError
        (see EncoderDecoder.check_finite) if a term overflows."""
        self.check_input(x)
        eps = objectives.draw_eps(self, x.shape[0], 1, rng, eps)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logpx, kl = objectives.elbo_terms(self, x, eps)
        self.check_finite(x, {"the reconstruction term log p(x|z)": logpx, "the KL term": kl})
        return logpx, kl

    def loss_terms_and_grads(self, x, *, rng=None, beta=1.0, eps=None, out=None,
                             objective="elbo", k=1, free_bits=0.0):
        """``loss_and_grads`` that also returns the two terms.

        Returns ``((loss, recon, kl), grads)``: batch means of the objective,
        -log p(x|z) and the KL term, as floats in nats per example (see
        the model's ``objectives`` module's loss_and_grads, which checks every
        argument: objectives.py here).
        NonFiniteError (see EncoderDecoder.check_finite) if a term or a
        gradient overflows.
        """
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            terms, grads = self.objectives.loss_and_grads(self, x, rng=rng, beta=beta, eps=eps,
                                                          out=out, objective=objective, k=k,
                                                          free_bits=free_bits)
        self.check_loss_finite(x, terms, grads)
        return (terms["loss"], terms["recon"], terms["kl"]), grads

    def check_loss_finite(self, x, terms, grads):
        """NonFiniteError, naming what overflowed, unless the terms of an objective
        (objectives' {"loss", "recon", "kl"}) and every gradient are finite."""
        self.check_finite(x, {"the reconstruction term -log p(x|z)": terms["recon"],
                              "the KL term": terms["kl"], "the loss": terms["loss"]}, grads)

    def loss_and_grads(self, x, *, rng=None, beta=1.0, eps=None, out=None, objective="elbo", k=1,
                       free_bits=0.0):
        """The batch mean of a negative bound on log p(x), and its gradients.

        x : (N, D) of the model's dtype.  The rest are keywords (the order of
        objectives.loss_and_grads): the noise, drawn with ``rng`` or given as
        ``eps``: (N, L) for k = 1, (k, N, L) for k > 1; ``beta`` (finite,
        >= 0) weights the KL term of the two ELBOs; ``out``, a FlatParams to
        write the gradients into (e.g. ``model.params.zeros_like()``);
        ``objective``: 'elbo' (estimator B, the KL in closed form; the
        default), 'elbo-mc' (estimator A, the KL sampled), 'iwae' (the
        importance-weighted bound) or 'wake-sleep' (objectives.OBJECTIVES),
        with ``k`` samples of z per example; ``free_bits`` (lambda >= 0, 'elbo'
        only) clamps the KL per dimension.  Returns ``(loss, grads)``: a
        float in nats per example and a FlatParams with the keys and shapes
        of ``params``.
        """
        (loss, _, _), grads = self.loss_terms_and_grads(x, rng=rng, beta=beta, eps=eps, out=out,
                                                        objective=objective, k=k,
                                                        free_bits=free_bits)
        return loss, grads
