"""Exercise 6: the KL divergence of q(z|x) = N(mu, diag(exp(logvar))) to the prior N(0, I).

    KL = 1/2 * sum_l [ exp(logvar_l) + mu_l^2 - 1 - logvar_l ]       one value per example, (N,)

Given dkl = dL/dKL (N,), one number per example, write kl_backward: return
dL/dmu and dL/dlogvar, each (N, L).

Hints (docs/kl.md derives the closed form and its gradient):
  * Differentiate one term of the sum, then multiply by that example's dkl
    (dkl[:, None] broadcasts it over l).
  * d/dlogvar [exp(logvar) - logvar] / 2: keep the 1/2, and the sign of each part.

Check your answer:  python exercises/check.py kl
"""

import numpy as np


def kl_forward(mu, logvar):
    """mu, logvar (N, L) -> KL (N,), cache (mu, logvar)."""
    kl = 0.5 * np.sum(np.exp(logvar) + mu ** 2 - 1 - logvar, axis=1)
    return kl, (mu, logvar)


def kl_backward(dkl, cache):
    """dkl (N,) -> (dmu (N, L), dlogvar (N, L))."""
    mu, logvar = cache
    # TODO: dmu and dlogvar from dkl, mu and logvar.
    raise NotImplementedError("TODO: kl_backward")
