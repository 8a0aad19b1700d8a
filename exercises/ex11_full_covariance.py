"""Exercise 11: the KL divergence of a full-covariance q(z|x) = N(mu, L L^T) to the prior N(0, I).

    KL = 1/2 * [ tr(L L^T) + mu^T mu - n - log det(L L^T) ]
       = 1/2 * [ sum_ij L_ij^2 + sum_i mu_i^2 - n ] - sum_i log L_ii       one value per example, (N,)

L (N, n, n) is lower triangular with a positive diagonal, the Cholesky
factor of the covariance; the forward reads only its lower triangle.  Given
dkl = dL/dKL (N,), write kl_backward: return dL/dmu (N, n) and dL/dfactor
(N, n, n).

Hints (docs/full_covariance.md, section 5, derives it):
  * d tr(L L^T) / dL = 2 L (the trace rule), so the first term gives L.
  * log det(L L^T) = 2 sum_i log L_ii: only the diagonal entries appear, each
    with derivative 1 / L_ii.
  * The entries above the diagonal are not parameters: their gradient is 0.
  * Weight each example by its dkl: dkl[:, None] for mu, dkl[:, None, None] for L.

Check your answer:  python exercises/check.py full_covariance
"""

import numpy as np


def kl_forward(mu, factor):
    """mu (N, n), factor (N, n, n) -> KL (N,), cache (mu, L) with L the lower triangle."""
    factor = np.tril(factor)
    diag = np.diagonal(factor, axis1=1, axis2=2)                     # (N, n), the L_ii
    kl = 0.5 * (np.sum(factor ** 2, axis=(1, 2)) + np.sum(mu ** 2, axis=1) - mu.shape[1])
    kl -= np.sum(np.log(diag), axis=1)
    return kl, (mu, factor)


def kl_backward(dkl, cache):
    """dkl (N,) -> (dmu (N, n), dfactor (N, n, n), zero above the diagonal)."""
    mu, factor = cache
    # TODO: dmu and dfactor from dkl, mu and factor.
    raise NotImplementedError("TODO: kl_backward")
