"""A deterministic autoencoder: the starting point of the VAE derivation.

    z = encoder(x)                      (N, L)
    out = decoder(z)                    (N, K)   parameters of p(x|z)
    loss = mean_n [ -log p(x_n | z_n) ]  nats per example

The VAE (vae.py) keeps this decoder and loss term, makes the encoder output
a distribution q(z|x) instead of a point, samples z from it with the
reparameterization trick, and adds KL(q(z|x) || p(z)).  What both share
(architecture, parameters, checks, decoding, the model file) is encoder_decoder.py.
"""

import numpy as np

from numpyvae.model.encoder_decoder import EncoderDecoder


class Autoencoder(EncoderDecoder):
    """The encoder output is the code z itself (E = L).  Constructor: see encoder_decoder.EncoderDecoder."""

    kind = "autoencoder"

    def encoder_outputs(self):
        return self.latent_dim

    def encode(self, x):
        """x (N, D) -> z (N, L)."""
        self.check_input(x)
        return self.encoder.forward(self.params, x)[0]

    def reconstruct(self, x):
        """x (N, D) -> mean of p(x | z = encode(x)) (N, D)."""
        return self.decode(self.encode(x))

    def loss_and_grads(self, x, out=None):
        """Mean reconstruction loss -log p(x|z) over the batch, and its gradients.

        Returns ``(loss, grads)``: a float (nats per example) and a FlatParams
        with the keys and shapes of ``params`` (written into ``out`` if given).
        NonFiniteError (see EncoderDecoder.check_finite) if the loss or a gradient overflows.
        """
        self.check_input(x)
        n = x.shape[0]
        grads = self.grad_buffer(out)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            z, enc_cache = self.encoder.forward(self.params, x)
            logpx, dec_cache = self.decoder_forward(x, z)
            loss = -float(np.mean(logpx))
            # dL/dlogpx_n = -1/N for L = -(1/N) sum_n logpx_n
            dz = self.decoder_backward(np.full(n, -1.0 / n, dtype=self.dtype), dec_cache, grads)
            self.encoder.backward(grads, dz, enc_cache, need_dx=False)
        self.check_finite(x, {"the reconstruction term -log p(x|z)": loss}, grads)
        return loss, grads
