"""Posterior collapse, measured: the KL per dimension, and the average KL split into
the mutual information I_q(x; z) and the aggregate posterior's KL to the prior.

Over a data set of N examples x_1..x_N (each of probability 1/N), the encoder
defines a joint q(x, z) = (1/N) q(z|x), whose marginal over z is the
aggregate posterior

    q(z) = (1/N) sum_n q(z|x_n)                                   a mixture of N Gaussians

and the KL term of the ELBO, averaged over the data, splits in two
(Hoffman & Johnson 2016, "ELBO surgery"; docs/collapse.md section 1):

    (1/N) sum_n KL(q(z|x_n) || p(z))
        = E_q(x,z)[ log q(z|x) - log p(z) ]
        = E_q(x,z)[ log q(z|x) - log q(z) ]  +  E_q(z)[ log q(z) - log p(z) ]
        =            I_q(x; z)               +       KL(q(z) || p(z))

I_q(x; z) is how much the code says about which example it came from
(0 <= I_q <= log N); KL(q(z) || p(z)) how far the codes as a whole sit from
the prior.  A collapsed posterior, q(z|x) = p(z) for every x, makes both 0.

Both parts are expectations under q(x, z), estimated by sampling
(``kl_decomposition``): M examples x_m drawn from the N (without
replacement), one z_m ~ q(z|x_m) each, and log q(z_m) computed exactly as
a logsumexp over all N posteriors,

    log q(z_m) = logsumexp_n log N(z_m; mu_n, diag(exp(logvar_n))) - log N
    I_hat      = (1/M) sum_m [ log q(z_m|x_m) - log q(z_m) ]
    KLagg_hat  = (1/M) sum_m [ log q(z_m) - log p(z_m) ]

each with its standard error sd / sqrt(M) over the M terms.  Functions:

    kl_per_dimension       (L,) the mean KL of each latent dimension (its sum: the KL term)
    posterior_parameters   mu, logvar (N, L) of a model's q(z|x) on a data set
    pairwise_log_density   log q(z_b | x_n) for every sample b and every posterior n, (B, N)
                           (pairwise_log_density_fast: the same in two matrix products)
    aggregate_log_density  log q(z) of the mixture at the points z (B, L) -> (B,)
    kl_decomposition       the estimate of I_q and KL(q(z) || p(z)), with their errors
    measure_collapse       all of it for a model on a data set (demos/collapse.py prints it)
"""

from dataclasses import dataclass

import numpy as np

from numpyvae.evaluate import active_units, logsumexp_fast
from numpyvae.ops.gaussian import (LOG_2PI, gaussian_log_density_forward,
                                   kl_standard_normal_forward,
                                   kl_standard_normal_per_dimension_forward,
                                   reparameterize_forward, standard_normal_log_density_forward)
from numpyvae.util.validate import check_generator, check_positive_int, check_vae

# entries of the (B, N) table of log q(z_b|x_n) that aggregate_log_density builds at once
PAIRWISE_ELEMENTS = 2 ** 22


def kl_per_dimension(model, x, batch_size=1000):
    """Mean over the examples x (N, D) of KL(q(z_l|x) || N(0, 1)) for each latent
    dimension l, (L,) float64 (its sum over l is the KL term of the ELBO):

        KL_l = (1/N) sum_n 1/2 [ exp(logvar_nl) + mu_nl^2 - 1 - logvar_nl ]

    gaussian.kl_standard_normal_per_dimension_forward on posterior_parameters."""
    mu, logvar = posterior_parameters(model, x, batch_size)
    return np.mean(kl_standard_normal_per_dimension_forward(mu, logvar)[0], axis=0)


def posterior_parameters(model, x, batch_size=1000):
    """(mu, logvar), each (N, L) float64: the parameters of q(z|x_n) for every row
    of x (N, D), encoded ``batch_size`` examples at a time."""
    check_vae(model, "the posterior's parameters")
    model.check_input(x)
    batch_size = check_positive_int(batch_size, "batch_size")
    parts = [model.encode(x[i0:i0 + batch_size]) for i0 in range(0, x.shape[0], batch_size)]
    mu = np.concatenate([m for m, _ in parts]).astype(np.float64)
    logvar = np.concatenate([v for _, v in parts]).astype(np.float64)
    return mu, logvar


def pairwise_log_density(z, mu, logvar):
    """log N(z_b; mu_n, diag(exp(logvar_n))) for every point b and every posterior n:

        z (B, L), mu (N, L), logvar (N, L)  ->  (B, N)

    gaussian.gaussian_log_density_forward, broadcast over a (B, N, L) array (so its
    memory is B * N * L elements: call it on chunks of z)."""
    return gaussian_log_density_forward(z[:, None, :], mu[None, :, :], logvar[None, :, :])[0]


def pairwise_log_density_fast(z, mu, logvar):
    """pairwise_log_density's (B, N) table in two matrix products, B * N memory.

    With the precision p_n = exp(-logvar_n), expand the square of
    log N(z; mu_n, diag(1/p_n)) = -1/2 sum_l [ (z_l - mu_nl)^2 p_nl + logvar_nl + log 2pi ]:

        sum_l (z_l - mu_nl)^2 p_nl = (z*z) . p_n  -  2 z . (mu_n * p_n)  +  mu_n . (mu_n * p_n)

    so the table is -1/2 [ (z*z) @ p.T - 2 z @ (mu*p).T + c ], c_n = mu_n . (mu_n * p_n) +
    sum_l logvar_nl + L log 2pi.  The same numbers to rounding
    (tests/test_collapse.py), which costs little in float64: the three terms
    are of the size of the largest (z_l - mu_nl)^2 p_nl of the table.
    """
    z = np.asarray(z, dtype=np.float64)
    precision = np.exp(-logvar)                                               # (N, L)
    scaled_mu = mu * precision                                                # (N, L)
    constant = (np.sum(mu * scaled_mu, axis=1) + np.sum(logvar, axis=1)
                + mu.shape[1] * LOG_2PI)                                      # (N,)
    squares = (z * z) @ precision.T - 2.0 * (z @ scaled_mu.T)                 # (B, N)
    return -0.5 * (squares + constant)


def aggregate_log_density(z, mu, logvar, leave_out=None, chunk_elements=PAIRWISE_ELEMENTS):
    """log q(z) of the mixture q(z) = (1/N) sum_n N(z; mu_n, diag(exp(logvar_n))):

        log q(z_b) = logsumexp_n log N(z_b; mu_n, exp(logvar_n)) - log N

    z (B, L); mu, logvar (N, L).  ``leave_out``, (B,) indices or None: point b's
    mixture then omits component leave_out[b] (the example z_b was drawn from)
    and has N - 1 components.  Returns (B,) float64, from pairwise_log_density_fast
    on chunks of z of at most ``chunk_elements`` table entries."""
    z = np.asarray(z, dtype=np.float64)
    n = mu.shape[0]
    rows = max(1, chunk_elements // n)
    out = np.empty(z.shape[0])
    for b0 in range(0, z.shape[0], rows):
        log_q = pairwise_log_density_fast(z[b0:b0 + rows], mu, logvar)        # (b, N)
        if leave_out is not None:
            log_q[np.arange(log_q.shape[0]), leave_out[b0:b0 + rows]] = -np.inf
        out[b0:b0 + rows] = logsumexp_fast(log_q.T)       # scipy's logsumexp, less overhead
    return out - np.log(n if leave_out is None else n - 1)


@dataclass
class KLDecomposition:
    """The average KL and its two parts, in nats per example (float).

    average_kl                 (1/N) sum_n KL(q(z|x_n) || p(z)), in closed form
    mutual_information         I_hat, the estimate of I_q(x; z), and its standard error mi_se
    aggregate_kl               KLagg_hat, the estimate of KL(q(z) || p(z)), and aggregate_kl_se
    leave_one_out_information  the same as I_hat with x_m's own posterior left out of q(z)
                               (N - 1 in the mixture): an estimate that errs upwards, where
                               I_hat errs downwards, for a data distribution beyond the N
                               examples (docs/collapse.md section 3)
    n_examples, n_samples      N (in the aggregate posterior) and M (samples z_m)
    log_n                      log N, the largest I_q of N examples
    """

    average_kl: float
    mutual_information: float
    mi_se: float
    aggregate_kl: float
    aggregate_kl_se: float
    leave_one_out_information: float
    n_examples: int
    n_samples: int
    log_n: float


def kl_decomposition(mu, logvar, rng, n_samples=2000, chunk_elements=PAIRWISE_ELEMENTS):
    """Estimate I_q(x; z) and KL(q(z) || p(z)) for the posteriors q(z|x_n) =
    N(mu_n, diag(exp(logvar_n))), n = 1..N (mu, logvar (N, L)), p(z) = N(0, I):

        m_1..m_M      M = min(n_samples, N) examples drawn without replacement (rng)
        z_m           = mu_m + exp(logvar_m / 2) * eps_m,  eps_m ~ N(0, I)      (M, L)
        a_m           = log q(z_m|x_m) - log q(z_m)        the information term  (M,)
        b_m           = log q(z_m) - log p(z_m)            the aggregate term    (M,)
        I_hat = mean(a),  se = std(a) / sqrt(M);  KLagg_hat = mean(b), likewise

    log q(z_m) is aggregate_log_density over all N posteriors: exact, so the
    only randomness is the choice of examples and of z, which the standard
    errors measure.  a_m + b_m = log q(z_m|x_m) - log p(z_m), a one-sample
    estimate of KL(q(z|x_m) || p(z)), so I_hat + KLagg_hat estimates the
    closed-form average_kl.  The leave-one-out estimate replaces log q(z_m)
    by the mixture of the N - 1 other posteriors (aggregate_log_density's
    leave_out).  Returns a KLDecomposition.
    """
    check_generator(rng)
    n_samples = check_positive_int(n_samples, "n_samples")
    mu, logvar = np.asarray(mu, dtype=np.float64), np.asarray(logvar, dtype=np.float64)
    if mu.ndim != 2 or mu.shape != logvar.shape or mu.shape[0] < 2:
        raise ValueError(f"mu and logvar must be (N, L) arrays of one shape with N >= 2, got "
                         f"{mu.shape} and {logvar.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(logvar))):
        raise ValueError("mu and logvar must be finite")
    n, latent = mu.shape
    m = min(n_samples, n)
    chosen = rng.choice(n, size=m, replace=False)                              # (M,)
    eps = rng.standard_normal((m, latent))
    z = reparameterize_forward(mu[chosen], logvar[chosen], eps)[0]            # (M, L)
    log_q_own = gaussian_log_density_forward(z, mu[chosen], logvar[chosen])[0]  # (M,)
    log_q_agg = aggregate_log_density(z, mu, logvar, chunk_elements=chunk_elements)  # (M,)
    log_q_others = aggregate_log_density(z, mu, logvar, chosen, chunk_elements)  # (M,)
    log_p = standard_normal_log_density_forward(z)[0]                         # (M,)
    information = log_q_own - log_q_agg                                       # a_m
    aggregate = log_q_agg - log_p                                             # b_m
    return KLDecomposition(
        average_kl=float(np.mean(kl_standard_normal_forward(mu, logvar)[0])),
        mutual_information=float(np.mean(information)),
        mi_se=float(np.std(information, ddof=1) / np.sqrt(m)) if m > 1 else float("inf"),
        aggregate_kl=float(np.mean(aggregate)),
        aggregate_kl_se=float(np.std(aggregate, ddof=1) / np.sqrt(m)) if m > 1 else float("inf"),
        leave_one_out_information=float(np.mean(log_q_own - log_q_others)),
        n_examples=n, n_samples=m, log_n=float(np.log(n)))


@dataclass
class CollapseMeasures:
    """What a model's posteriors on a data set say about collapse.

    kl_per_dimension (L,)   mean KL of each latent dimension, nats (kl_per_dimension)
    active_units, unit_variances (L,)   evaluate.active_units: Var_x mu_l(x) > 0.01
    decomposition            KLDecomposition: the average KL = I_q(x; z) + KL(q(z) || p(z))
    mu, logvar (N, L)        the posteriors' parameters
    """

    kl_per_dimension: np.ndarray
    active_units: int
    unit_variances: np.ndarray
    decomposition: KLDecomposition
    mu: np.ndarray
    logvar: np.ndarray


def measure_collapse(model, x, rng, n_samples=2000):
    """CollapseMeasures of ``model`` on the examples x (N, D): kl_per_dimension,
    evaluate.active_units and kl_decomposition (n_samples, rng) of its posteriors."""
    mu, logvar = posterior_parameters(model, x)
    count, variances = active_units(model, x)
    return CollapseMeasures(kl_per_dimension(model, x), count, variances,
                            kl_decomposition(mu, logvar, rng, n_samples), mu, logvar)
