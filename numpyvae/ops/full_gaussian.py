"""The full-covariance Gaussian posterior q(z|x) = N(mu, L L^T): its factor,
reparameterization, log-density at the sample and KL terms, each a forward/backward pair.

Derived step by step in docs/full_covariance.md.  Notation: ``factor`` is
the lower-triangular L (..., n, n) with a positive diagonal, the Cholesky
factor of the covariance Sigma = L L^T; n is the latent dimension.  The
encoder outputs it through two raw blocks (the parameterisation,
``factor_forward``):

    log_diag  (..., n)              L_ii = exp(log_diag_i)      (positive for any raw value)
    lower     (..., n(n-1)/2)       L_ij = lower_m for i > j,   m-th pair of np.tril_indices(n, -1)
                                    (row by row: (1,0), (2,0), (2,1), (3,0), ...)
                                    L_ij = 0 for i < j

With lower = 0 and log_diag = logvar / 2 this is the diagonal posterior of
gaussian.py, N(mu, diag(exp(logvar))).

Every gradient with respect to ``factor`` is the gradient with respect to
its lower triangle (diagonal included): the entries above the diagonal are
not parameters and their gradient is returned as 0 (np.tril).  Each
backward says which intermediate it needs and the cache holds exactly that.
"""

import numpy as np

from numpyvae.ops.gaussian import LOG_2PI


def strictly_lower_size(n):
    """n(n-1)/2, the number of entries of an n x n matrix below its diagonal."""
    return n * (n - 1) // 2


def _diagonal(matrix):
    """The diagonal of the last two axes, (..., n, n) -> (..., n) (a read-only view)."""
    return np.diagonal(matrix, axis1=-2, axis2=-1)


def _diag_matrix(vector):
    """(..., n) -> (..., n, n) with ``vector`` on the diagonal and zeros elsewhere."""
    return vector[..., :, None] * np.eye(vector.shape[-1], dtype=vector.dtype)


def _solve_upper(factor, rhs):
    """L^-T rhs for rhs (..., n) broadcasting with factor (..., n, n): solves L^T u = rhs."""
    return np.linalg.solve(np.swapaxes(factor, -1, -2), rhs[..., None])[..., 0]


# ------------------------------------------------------------------ the factor --

def factor_forward(log_diag, lower):
    """L from the encoder's raw outputs:  L_ii = exp(log_diag_i),  L_ij = lower_m (i > j),  0 above.

    log_diag (..., n), lower (..., n(n-1)/2) -> factor (..., n, n), lower triangular
    with a positive diagonal.  The cache is the diagonal exp(log_diag) (..., n).
    """
    n = log_diag.shape[-1]
    if lower.shape[-1] != strictly_lower_size(n):
        raise ValueError(f"lower must have n(n-1)/2 = {strictly_lower_size(n)} entries in its "
                         f"last axis for log_diag of {n}, got {lower.shape[-1]}")
    rows, cols = np.tril_indices(n, -1)
    diag = np.exp(log_diag)
    factor = np.zeros(log_diag.shape + (n,), dtype=np.result_type(log_diag, lower))
    factor[..., rows, cols] = lower
    factor[..., np.arange(n), np.arange(n)] = diag
    return factor, diag


def factor_backward(dfactor, diag):
    """dfactor (..., n, n) -> (dlog_diag (..., n), dlower (..., n(n-1)/2)):

        dlog_diag_i = dfactor_ii * dL_ii/dlog_diag_i = dfactor_ii * exp(log_diag_i)
        dlower_m    = dfactor_ij  for the m-th pair (i, j) below the diagonal

    The entries of dfactor above the diagonal belong to no parameter and are dropped.
    """
    rows, cols = np.tril_indices(diag.shape[-1], -1)
    return _diagonal(dfactor) * diag, dfactor[..., rows, cols]


# --------------------------------------------------------- reparameterization --

def reparameterize_forward(mu, factor, eps):
    """z = mu + L eps,  eps ~ N(0, I):  z has mean mu and covariance L L^T.

    mu (N, n), factor (N, n, n), eps (k, N, n) (or (N, n)) -> z of eps's shape.
    The cache is eps: the backward needs nothing else.
    """
    z = (factor @ eps[..., None])[..., 0]
    z += mu
    return z, eps


def reparameterize_backward(dz, eps):
    """Backward of z_i = mu_i + sum_j L_ij eps_j (eps held fixed), per sample:

        dmu     = dz                        (k, N, n)
        dfactor = tril(dz eps^T)            (k, N, n, n):  dfactor_ij = dz_i eps_j for i >= j

    The caller sums over the k samples (as for gaussian.reparameterize_backward).
    """
    return dz, np.tril(dz[..., :, None] * eps[..., None, :])


# ------------------------------------------------------ log q at the sample --

def log_density_at_sample_forward(eps, factor):
    """log q(z|x) = log N(z; mu, L L^T) at the reparameterized z = mu + L eps:

        log q = -1/2 [ (z - mu)^T (L L^T)^-1 (z - mu) + log det(L L^T) + n log(2 pi) ]
              = -1/2 [ eps^T eps + 2 sum_i log L_ii + n log(2 pi) ]

    since L^-1 (z - mu) = eps and det(L L^T) = prod_i L_ii^2.  eps (k, N, n),
    factor (N, n, n) -> (k, N).  The cache holds (eps, factor).
    """
    logdet = 2 * np.sum(np.log(_diagonal(factor)), axis=-1)                  # (N,)
    logq = -0.5 * (np.sum(eps * eps, axis=-1) + logdet + eps.shape[-1] * LOG_2PI)
    return logq, (eps, factor)


def log_density_at_sample_backward(dlogq, cache):
    """The partial derivatives of log N(z; mu, L L^T) in z, mu and L as independent
    variables (the caller adds the path through z = mu + L eps).  With u = L^-T eps
    (= Sigma^-1 (z - mu)):

        d/dz      = -dlogq * u
        d/dmu     =  dlogq * u
        d/dfactor =  dlogq * tril(u eps^T - L^-T) = dlogq * [ tril(u eps^T) - diag(1 / L_ii) ]

    dlogq (k, N) -> (dz (k, N, n), dmu (k, N, n), dfactor (k, N, n, n)).
    """
    eps, factor = cache
    u = _solve_upper(factor, eps)                                             # (k, N, n)
    dmu = dlogq[..., None] * u
    dfactor = np.tril(u[..., :, None] * eps[..., None, :]) - _diag_matrix(1 / _diagonal(factor))
    dfactor *= dlogq[..., None, None]
    return -dmu, dmu, dfactor


# --------------------------------------------------------------------- KL --

def kl_standard_normal_forward(mu, factor):
    """KL( N(mu, L L^T) || N(0, I) ) per example, in closed form:

        KL = 1/2 [ tr(L L^T) + mu^T mu - n - log det(L L^T) ]
           = 1/2 [ sum_ij L_ij^2 + sum_i mu_i^2 - n ] - sum_i log L_ii

    mu (N, n), factor (N, n, n) -> (N,).  The cache is (mu, factor).
    """
    kl = 0.5 * (np.sum(factor * factor, axis=(-2, -1)) + np.sum(mu * mu, axis=-1) - mu.shape[-1])
    kl -= np.sum(np.log(_diagonal(factor)), axis=-1)
    return kl, (mu, factor)


def kl_standard_normal_backward(dkl, cache):
    """dkl (N,) -> (dmu (N, n), dfactor (N, n, n)):

        dmu     = dkl * mu
        dfactor = dkl * (L - diag(1 / L_ii))        (lower triangular, as L)
    """
    mu, factor = cache
    dfactor = factor - _diag_matrix(1 / _diagonal(factor))
    return dkl[..., None] * mu, dkl[..., None, None] * dfactor


def kl_full_gaussians_forward(mu1, factor1, mu2, factor2):
    """KL( N(mu1, L1 L1^T) || N(mu2, L2 L2^T) ), Sigma_k = L_k L_k^T:

        KL = 1/2 [ tr(Sigma2^-1 Sigma1) + (mu2 - mu1)^T Sigma2^-1 (mu2 - mu1) - n
                   + log det Sigma2 - log det Sigma1 ]
           = 1/2 [ ||A||_F^2 + ||b||^2 - n ] + sum_i log L2_ii - sum_i log L1_ii,

    A = L2^-1 L1 (tr(Sigma2^-1 Sigma1) = tr(L2^-T L2^-1 L1 L1^T) = tr(A^T A)) and
    b = L2^-1 (mu1 - mu2).  mu (..., n), factor (..., n, n), all of one batch
    shape (...), -> (...).  The cache holds (A, b, factor1, factor2).  A factor whose
    diagonal is not positive (not a Cholesky factor) raises a ValueError naming it.
    """
    for name, factor in (("factor1", factor1), ("factor2", factor2)):
        if not np.all(_diagonal(factor) > 0):
            raise ValueError(f"{name} must be lower triangular with a positive diagonal "
                             "(a Cholesky factor, e.g. np.linalg.cholesky(cov))")
    a = np.linalg.solve(factor2, factor1)                                     # (..., n, n)
    b = np.linalg.solve(factor2, (mu1 - mu2)[..., None])[..., 0]               # (..., n)
    kl = 0.5 * (np.sum(a * a, axis=(-2, -1)) + np.sum(b * b, axis=-1) - mu1.shape[-1])
    kl += np.sum(np.log(_diagonal(factor2)) - np.log(_diagonal(factor1)), axis=-1)
    return kl, (a, b, factor1, factor2)


def kl_full_gaussians_backward(dkl, cache):
    """dkl (...) -> (dmu1, dfactor1, dmu2, dfactor2), with c = L2^-T b = Sigma2^-1 (mu1 - mu2):

        dmu1     =  dkl * c
        dmu2     = -dkl * c
        dfactor1 =  dkl * tril(L2^-T A - L1^-T)           = dkl * [ tril(L2^-T A) - diag(1 / L1_ii) ]
        dfactor2 =  dkl * tril(L2^-T (I - A A^T - b b^T))  = dkl * [ diag(1 / L2_ii) - tril(L2^-T (A A^T + b b^T)) ]
    """
    a, b, factor1, factor2 = cache
    dkl_vec, dkl_mat = dkl[..., None], dkl[..., None, None]
    c = _solve_upper(factor2, b)                                              # (..., n)
    factor2_inv_t = np.swapaxes(np.linalg.inv(factor2), -1, -2)               # L2^-T (..., n, n)
    dfactor1 = np.tril(factor2_inv_t @ a) - _diag_matrix(1 / _diagonal(factor1))
    outer = a @ np.swapaxes(a, -1, -2) + b[..., :, None] * b[..., None, :]     # A A^T + b b^T
    dfactor2 = _diag_matrix(1 / _diagonal(factor2)) - np.tril(factor2_inv_t @ outer)
    return dkl_vec * c, dkl_mat * dfactor1, -dkl_vec * c, dkl_mat * dfactor2


# ----------------------------------- the posterior on the encoder's raw outputs --

class Posterior:
    """q(z|x) = N(mu, L L^T) on the encoder's raw outputs, the ``posterior`` of
    model/full_covariance_vae.py: each op of this module on L after
    factor_forward, each backward carrying dL back through factor_backward.

    ``scale`` is the encoder output after mu, [log_diag, lower] (N, n(n+1)/2);
    the signatures are gaussian.py's with ``scale`` in place of ``logvar``.
    """

    @staticmethod
    def factor_forward(scale, n):
        """[log_diag, lower] (..., n(n+1)/2) -> L (..., n, n), the factor's cache."""
        return factor_forward(scale[..., :n], scale[..., n:])

    @staticmethod
    def factor_backward(dfactor, factor_cache):
        """dL (..., n, n) -> d[log_diag, lower] (..., n(n+1)/2)."""
        dlog_diag, dlower = factor_backward(dfactor, factor_cache)
        return np.concatenate([dlog_diag, dlower], axis=-1)

    @staticmethod
    def dfactor_to_dscale(grads, factor_cache):
        """An op's gradients (..., dL) -> (..., dscale): the last carried through factor_backward."""
        *others, dfactor = grads
        return (*others, Posterior.factor_backward(dfactor, factor_cache))

    @staticmethod
    def reparameterize_forward(mu, scale, eps):
        """z = mu + L eps: mu (N, n), scale (N, n(n+1)/2), eps (k, N, n) -> z (k, N, n)."""
        factor, factor_cache = Posterior.factor_forward(scale, mu.shape[-1])
        z, rep_cache = reparameterize_forward(mu, factor, eps)
        return z, (rep_cache, factor_cache)

    @staticmethod
    def reparameterize_backward(dz, cache):
        """dz (k, N, n) -> (dmu (k, N, n), dscale (k, N, n(n+1)/2)), per sample."""
        rep_cache, factor_cache = cache
        return Posterior.dfactor_to_dscale(reparameterize_backward(dz, rep_cache), factor_cache)

    @staticmethod
    def log_density_at_sample_forward(eps, scale):
        """log q(z|x) at z = mu + L eps: eps (k, N, n), scale (N, n(n+1)/2) -> (k, N)."""
        factor, factor_cache = Posterior.factor_forward(scale, eps.shape[-1])
        logq, q_cache = log_density_at_sample_forward(eps, factor)
        return logq, (q_cache, factor_cache)

    @staticmethod
    def log_density_at_sample_backward(dlogq, cache):
        """dlogq (k, N) -> the partials (dz, dmu, dscale), (k, N, .) each."""
        q_cache, factor_cache = cache
        return Posterior.dfactor_to_dscale(log_density_at_sample_backward(dlogq, q_cache),
                                           factor_cache)

    @staticmethod
    def kl_standard_normal_forward(mu, scale):
        """KL(N(mu, L L^T) || N(0, I)): mu (N, n), scale (N, n(n+1)/2) -> (N,)."""
        factor, factor_cache = Posterior.factor_forward(scale, mu.shape[-1])
        kl, kl_cache = kl_standard_normal_forward(mu, factor)
        return kl, (kl_cache, factor_cache)

    @staticmethod
    def kl_standard_normal_backward(dkl, cache):
        """dkl (N,) -> (dmu (N, n), dscale (N, n(n+1)/2))."""
        kl_cache, factor_cache = cache
        return Posterior.dfactor_to_dscale(kl_standard_normal_backward(dkl, kl_cache), factor_cache)
