"""Free bits (Kingma et al. 2016, "Improved Variational Inference with Inverse
Autoregressive Flow"): the KL term of the ELBO, with each latent dimension's
batch-mean KL clamped from below at lambda nats,

    KL_free = sum_l max(lambda, m_l),   m_l = (1/N) sum_n KL_nl       KL_nl (N, L) -> scalar

KL_nl = KL(q(z_l|x_n) || N(0, 1)) is gaussian.kl_standard_normal_per_dimension_forward.
A dimension whose mean KL is below lambda pays lambda, a constant: its KL
gets no gradient, so the encoder may spend up to lambda nats on it for
free, and the KL term cannot push it all the way to the prior (collapse).
Derivation and check: docs/collapse.md section 5.
"""

import numpy as np


def free_bits_forward(kl, threshold):
    """kl (N, L) per-example, per-dimension KLs; threshold lambda >= 0 (nats) ->

        out = sum_l max(lambda, (1/N) sum_n kl_nl)                    a float

    The cache holds the mask above_l = [m_l > lambda] (L,) and N."""
    mean_kl = np.mean(kl, axis=0)                                     # (L,) m_l
    above = mean_kl > threshold                                       # (L,)
    return float(np.sum(np.maximum(threshold, mean_kl))), (above, kl.shape[0])


def free_bits_backward(dout, cache):
    """dout (a float, dL/dout) -> dkl (N, L):

        dout/dkl_nl = [m_l > lambda] / N

    max(lambda, m) has derivative 0 below the kink and 1 above it; at
    m_l = lambda exactly it has none, and any value in [0, 1] is a
    subgradient: this takes 0 (the dimension counts as clamped)."""
    above, n = cache
    return np.broadcast_to(dout * above / n, (n, above.shape[0])).copy()
