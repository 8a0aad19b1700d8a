"""Exercise 5: the reparameterization trick, backward.

    z = mu + exp(logvar / 2) * eps,     eps ~ N(0, I) drawn before, held fixed

so that z ~ N(mu, diag(exp(logvar))) is a differentiable function of mu and
logvar.  Given dz = dL/dz, write reparameterize_backward: return dL/dmu and
dL/dlogvar.

Hints (docs/reparameterization.md):
  * dz/dmu = 1 elementwise.
  * d exp(logvar / 2) / dlogvar: mind the 1/2 of the exponent (chain rule).
  * The cache holds std = exp(logvar / 2) and eps.

Check your answer:  python exercises/check.py reparameterize
"""

import numpy as np


def reparameterize_forward(mu, logvar, eps):
    """mu, logvar, eps (N, L) -> z (N, L), cache (std, eps)."""
    std = np.exp(0.5 * logvar)
    z = mu + std * eps
    return z, (std, eps)


def reparameterize_backward(dz, cache):
    """dz (N, L) -> (dmu (N, L), dlogvar (N, L))."""
    std, eps = cache
    # TODO: dmu and dlogvar from dz, std and eps.
    raise NotImplementedError("TODO: reparameterize_backward")
