"""A VAE with two stochastic layers (Burda, Grosse & Salakhutdinov 2016, section 5 and
Table 1's second block): the model.

    inference   q(z1|x) q(z2|z1)              generation   p(z2) p(z1|z2) p(x|z1)

Four MLPs over one parameter buffer, each Gaussian diagonal:

    encoder      x  (N, D)   -> hidden_dims           -> [mu1, logvar1]            (N, 2 L1)     q(z1|x)
    top_encoder  z1 (M, L1)  -> top_hidden_dims       -> [mu2, logvar2]            (M, 2 L2)     q(z2|z1)
    top_decoder  z2 (M, L2)  -> reversed(top_hidden)  -> [prior_mu, prior_logvar]  (M, 2 L1)     p(z1|z2)
    decoder      z1 (M, L1)  -> reversed(hidden_dims) -> the likelihood's output   (M, K)        p(x|z1)

and p(z2) = N(0, I).  The paper's sizes are the defaults: 784 -> 200 -> 200
-> z1 (100) -> 100 -> 100 -> z2 (50), the decoders mirrored, tanh.  The
objectives and their backward passes are two_layer_objectives.py; the
derivation is docs/two_stochastic_layers.md.  Everything the one-layer VAE
offers on x works here too (encode, reconstruct, log_likelihood, saving),
on the lower layer's q(z1|x) where it needs a code.
"""

import numpy as np

from numpyvae import two_layer_objectives
from numpyvae.objectives import draw_eps
from numpyvae.model.mlp import MLP
from numpyvae.model.params import FlatParams
from numpyvae.model.vae import VAE
from numpyvae.util.validate import check_generator, check_positive_int


class TwoLayerVAE(VAE):
    """x -> hidden_dims -> z1 (latent_dim = L1) -> top_hidden_dims -> z2 (top_latent_dim = L2).

    The first eight arguments are those of VAE (encoder_decoder.EncoderDecoder),
    for the lower layer; ``top_hidden_dims`` (a sequence of sizes, () for
    linear) and ``top_latent_dim`` (L2) shape the top layer.  The noise of
    one sample is eps (L1 + L2,) = [eps1, eps2] (``noise_dim`` = L1 + L2).
    The weights of the encoder and the decoder are those of a VAE of the same
    seed; the top networks' follow from the same Generator.
    """

    kind = "two-layer-vae"
    objectives = two_layer_objectives   # its loss_and_grads / objective_loss_and_grads
    trainable_objectives = two_layer_objectives.OBJECTIVES

    def __init__(self, input_dim, hidden_dims=(200, 200), latent_dim=100, likelihood="bernoulli",
                 obs_var=1.0, activation="tanh", dtype=np.float32, seed=0,
                 textbook=False, top_hidden_dims=(100, 100), top_latent_dim=50):
        super().__init__(input_dim, hidden_dims, latent_dim, likelihood, obs_var, activation,
                         dtype, seed, textbook)
        if isinstance(top_hidden_dims, (str, bytes)) or not hasattr(top_hidden_dims, "__iter__"):
            raise TypeError(f"top_hidden_dims must be a sequence of layer sizes such as "
                            f"(100, 100), got {top_hidden_dims!r}")
        self.top_hidden_dims = tuple(check_positive_int(h, "top_hidden_dims sizes")
                                     for h in top_hidden_dims)
        self.top_latent_dim = check_positive_int(top_latent_dim, "top_latent_dim")
        self.top_encoder = MLP("top_encoder", (self.latent_dim, *self.top_hidden_dims,
                                               2 * self.top_latent_dim), activation,
                               self.textbook)
        self.top_decoder = MLP("top_decoder", (self.top_latent_dim, *self.top_hidden_dims[::-1],
                                               2 * self.latent_dim), activation,
                               self.textbook)
        # one buffer for all four networks (VAE.__init__ made one for the lower two only)
        networks = (self.encoder, self.decoder, self.top_encoder, self.top_decoder)
        self.params = FlatParams({name: shape for network in networks
                                  for name, shape in network.param_shapes().items()}, self.dtype)
        rng = np.random.default_rng(seed)
        for network in networks:
            network.init_params(self.params, rng)

    @property
    def noise_dim(self):
        """Entries of eps per sample: L1 + L2 (z1's, then z2's)."""
        return self.latent_dim + self.top_latent_dim

    def config(self):
        return {**super().config(), "top_hidden_dims": list(self.top_hidden_dims),
                "top_latent_dim": self.top_latent_dim}

    def sample(self, n, rng):
        """n >= 1 ancestral draws, z2 ~ N(0, I) then z1 ~ p(z1|z2), from the
        Generator ``rng``, decoded: the means of p(x|z1), (n, D)."""
        n = check_positive_int(n, "n")
        check_generator(rng)
        z2 = rng.standard_normal((n, self.top_latent_dim), dtype=self.dtype)
        h = self.top_decoder.forward(self.params, z2)[0]                      # (n, 2 L1)
        prior_mu, prior_logvar = h[:, :self.latent_dim], h[:, self.latent_dim:]
        z1 = prior_mu + np.exp(prior_logvar / 2) * rng.standard_normal(prior_mu.shape,
                                                                        dtype=self.dtype)
        return self.decode(z1)

    def elbo_terms(self, x, rng=None, eps=None):
        """Per-example (log p(x|z1), the rest of the ELBO) at one (z1, z2) per
        example, no gradients; (N,) each.  The rest is the 'elbo' objective's:
        log q(z1|x) - log p(z1|z2) + KL(q(z2|z1) || N(0, I)), so that
        log p(x|z1) - rest is an ELBO (the run's test -ELBO is recon + rest).

        x (N, D); the noise from ``rng`` or ``eps`` (N, L1 + L2).
        NonFiniteError (see base.check_finite) if a term overflows."""
        self.check_input(x)
        eps = draw_eps(self, x.shape[0], 1, rng, eps, width=self.noise_dim)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logpx, rest = two_layer_objectives.elbo_terms(self, x, eps)
        self.check_finite(x, {"the reconstruction term log p(x|z1)": logpx,
                              "the KL terms": rest})
        return logpx, rest
