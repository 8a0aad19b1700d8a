"""The Gaussian pieces of a VAE: log-density, reparameterization, KL.

Notation: ``mu`` and ``logvar`` are (N, L) arrays, the mean and log-variance
of a diagonal Gaussian per example; ``std = exp(logvar / 2)``.  Functions
that reduce over the last axis return one value per example, shape (N,).
"""

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


def gaussian_log_density_forward(x, mean, logvar):
    """log N(x; mean, diag(exp(logvar))), summed over the last axis:

        log N = -1/2 * sum_d [ (x_d - mean_d)^2 * exp(-logvar_d) + logvar_d + log(2 pi) ]

    x, mean : (..., D); logvar : (..., D) or anything that broadcasts (a
    scalar for a fixed variance).  Returns ``(logp, cache)``, logp of shape
    ``x.shape[:-1]``, cache = (x - mean, exp(-logvar)).
    """
    diff = x - mean
    precision = np.exp(-logvar)
    logvar_sum = np.sum(np.broadcast_to(logvar, diff.shape), axis=-1)
    logp = -0.5 * (np.sum(diff * diff * precision, axis=-1) + logvar_sum + diff.shape[-1] * LOG_2PI)
    return logp, (diff, precision)


def gaussian_log_density_backward(dlogp, cache):
    """dlogp : (...,) upstream gradient -> (dmean, dlogvar), each (..., D):

        dmean   = dlogp * (x - mean) * exp(-logvar)
        dlogvar = dlogp * ((x - mean)^2 * exp(-logvar) - 1) / 2
    """
    diff, precision = cache
    dmean = dlogp[..., None] * diff * precision
    dlogvar = 0.5 * (dmean * diff - dlogp[..., None])
    return dmean, dlogvar


def standard_normal_log_density_forward(z):
    """log p(z) = log N(z; 0, I) = -1/2 * sum_l (z_l^2 + log(2 pi)):  z (..., L) -> (...,).

    The cache is z itself."""
    return -0.5 * (np.sum(z * z, axis=-1) + z.shape[-1] * LOG_2PI), z


def standard_normal_log_density_backward(dlogp, z):
    """dz = dlogp * d/dz [-z^2 / 2] = -dlogp * z:  dlogp (...,) -> dz (..., L)."""
    return -dlogp[..., None] * z


def log_density_at_sample_forward(eps, logvar):
    """log q(z|x) = log N(z; mu, diag(exp(logvar))) at a reparameterized sample
    z = mu + std * eps, std = exp(logvar / 2):

        log q = -1/2 sum_l [ (z_l - mu_l)^2 / std_l^2 + logvar_l + log(2 pi) ]
              = -1/2 sum_l [ eps_l^2 + logvar_l + log(2 pi) ]          since z - mu = std * eps

    The second line is the same number without the rounding of z - mu (which
    cancels when std << |mu|).  eps (k, N, L), logvar (N, L) -> (k, N).
    The cache holds (eps, std).
    """
    std = np.exp(0.5 * logvar)
    logq = -0.5 * (np.sum(eps * eps, axis=-1) + np.sum(logvar, axis=-1) + eps.shape[-1] * LOG_2PI)
    return logq, (eps, std)


def log_density_at_sample_backward(dlogq, cache):
    """The three partial derivatives of log N(z; mu, var) (gaussian_log_density_backward's
    formulas, with x = z, mean = mu and z - mu = std * eps):

        d/dz      = -dlogq * (z - mu) / var   = -dlogq * eps / std
        d/dmu     =  dlogq * (z - mu) / var   =  dlogq * eps / std
        d/dlogvar =  dlogq * ((z - mu)^2 / var - 1) / 2 = dlogq * (eps^2 - 1) / 2

    dlogq (k, N) -> (dz, dmu, dlogvar), each (k, N, L).  These are partials:
    z itself depends on mu and logvar, and the caller adds that path through
    reparameterize_backward (in total, d log q / dmu = 0 and
    d log q / dlogvar = -1/2 at fixed eps).
    """
    eps, std = cache
    dmu = dlogq[..., None] * eps / std
    dlogvar = 0.5 * dlogq[..., None] * (eps * eps - 1)
    return -dmu, dmu, dlogvar


# ------------------------------------------------------ reparameterization --

def reparameterize_forward(mu, logvar, eps):
    """z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I).

    mu, logvar, eps : (N, L)  ->  z : (N, L).  z then has mean mu and
    variance exp(logvar) (a standard deviation of exp(logvar / 2)).
    The cache is (std, eps).
    """
    std = np.exp(0.5 * logvar)
    z = std * eps
    z += mu
    return z, (std, eps)


def reparameterize_backward(dz, cache):
    """Backward of z = mu + exp(logvar / 2) * eps (eps held fixed):

        dmu     = dz
        dlogvar = dz * eps * exp(logvar / 2) / 2 = dz * eps * std / 2
    """
    std, eps = cache
    dlogvar = dz * eps
    dlogvar *= std
    dlogvar *= 0.5
    return dz, dlogvar


# --------------------------------------------------------------------- KL --

def kl_standard_normal_forward(mu, logvar):
    """KL( N(mu, diag(exp(logvar))) || N(0, I) ) per example, in closed form:

        KL = 1/2 * sum_l [ exp(logvar_l) + mu_l^2 - 1 - logvar_l ]    (N,)

    The cache is (mu, var), var = exp(logvar).
    """
    var = np.exp(logvar)
    kl = 0.5 * np.sum(var + mu * mu - 1 - logvar, axis=1)
    return kl, (mu, var)


def kl_standard_normal_backward(dkl, cache):
    """dkl : (N,) upstream gradient per example ->

        dmu     = dkl * mu
        dlogvar = dkl * (exp(logvar) - 1) / 2
    """
    mu, var = cache
    dkl = dkl[:, None]
    return dkl * mu, dkl * 0.5 * (var - 1)


def kl_standard_normal_per_dimension_forward(mu, logvar):
    """kl_standard_normal_forward before its sum over l: one KL per example and dimension,

        KL_nl = 1/2 * [ exp(logvar_nl) + mu_nl^2 - 1 - logvar_nl ]    (N, L)

    (the KL of one coordinate, since q(z|x) and N(0, I) both factorise over l)."""
    var = np.exp(logvar)
    return 0.5 * (var + mu * mu - 1 - logvar), (mu, var)


def kl_standard_normal_per_dimension_backward(dkl, cache):
    """dkl : (N, L) upstream gradient per example and dimension ->

        dmu     = dkl * mu
        dlogvar = dkl * (exp(logvar) - 1) / 2
    """
    mu, var = cache
    return dkl * mu, dkl * 0.5 * (var - 1)


def kl_diag_gaussians_forward(mu_q, logvar_q, mu_p, logvar_p):
    """KL( N(mu_q, diag(exp(logvar_q))) || N(mu_p, diag(exp(logvar_p))) ):

        KL = 1/2 * sum_l [ logvar_p - logvar_q
                           + (exp(logvar_q) + (mu_q - mu_p)^2) / exp(logvar_p) - 1 ]

    All inputs (N, L) (or broadcastable); returns (N,).  The cache is
    (mu_q - mu_p, 1 / var_p, (var_q + (mu_q - mu_p)^2) / var_p, logvar_q, logvar_p).
    """
    diff = mu_q - mu_p
    inv_var_p = np.exp(-logvar_p)
    ratio = (np.exp(logvar_q) + diff * diff) * inv_var_p
    kl = 0.5 * np.sum(logvar_p - logvar_q + ratio - 1, axis=-1)
    return kl, (diff, inv_var_p, ratio, logvar_q, logvar_p)


def kl_diag_gaussians_backward(dkl, cache):
    """dkl : (N,) ->  (dmu_q, dlogvar_q, dmu_p, dlogvar_p), each (N, L):

        dmu_q     =  dkl * (mu_q - mu_p) / var_p
        dmu_p     = -dmu_q
        dlogvar_q =  dkl * (var_q / var_p - 1) / 2
        dlogvar_p =  dkl * (1 - (var_q + (mu_q - mu_p)^2) / var_p) / 2
    """
    diff, inv_var_p, ratio, logvar_q, logvar_p = cache
    dkl = dkl[..., None]
    dmu_q = dkl * diff * inv_var_p
    dlogvar_q = dkl * 0.5 * (np.exp(logvar_q - logvar_p) - 1)
    dlogvar_p = dkl * 0.5 * (1 - ratio)
    return dmu_q, dlogvar_q, -dmu_q, dlogvar_p

