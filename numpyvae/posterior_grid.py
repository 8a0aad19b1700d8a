"""The true posterior p(z|x) of a 2-d latent model on a grid, against q(z|x).

With two latent dimensions the posterior can be computed, not just
approximated: on a grid of points z_ij with spacing (h1, h2),

    log p(x, z_ij) = log p(x|z_ij) + log p(z_ij)                   the decoder, at every point
    p(x) = integral p(x, z) dz  ~  h1 h2 sum_ij p(x, z_ij)           the midpoint rule
    log p(x) ~ logsumexp_ij log p(x, z_ij) + log(h1 h2)
    p(z_ij|x) = p(x, z_ij) / p(x)                                    the posterior, normalised

and the ELBO's gap is the KL the encoder's q(z|x) leaves to the posterior:

    log p(x) - ELBO(x) = KL(q(z|x) || p(z|x))                        (docs/elbo.md section 4)

Functions (docs/collapse.md sections 6-7):

    log_joint_on_grid    log p(x, z) at every point of a grid, (G1, G2)
    posterior_box        where to put the grid: a coarse pass over the prior's range
    posterior_grid       the grid, log p(x) by quadrature, its error, and q(z|x) on the grid
    elbo_by_sampling     the ELBO of one image with its standard error, to measure the gap
"""

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from numpyvae.objectives import sampled_forward
from numpyvae.ops.gaussian import (gaussian_log_density_forward, kl_standard_normal_forward,
                                   standard_normal_log_density_forward)
from numpyvae.util.validate import check_generator, check_positive_int, check_vae

COARSE_POINTS = 81         # per axis, of the pass that finds the posterior
COARSE_HALF_WIDTH = 6.0    # the coarse pass covers [-6, 6]^2 (the prior's mass, and more)
DROP = 30.0                # the grid covers every point within 30 nats of the largest log p(x, z)
Q_STD_MARGIN = 5.0         # ... and q(z|x)'s mean +- 5 standard deviations
ROWS = 4096                # decoder passes at once


def _check_two_d(model, x):
    check_vae(model, "the true posterior")
    if model.latent_dim != 2:
        raise ValueError(f"the posterior grid needs a model with a 2-d latent, got latent_dim "
                         f"{model.latent_dim}")
    x = np.asarray(x)
    if x.ndim != 1:
        raise ValueError(f"x must be one image, a (D,) array, got shape {x.shape}")
    model.check_input(x[None, :])
    return x


def log_joint_on_grid(model, x, z1, z2):
    """log p(x, z) = log p(x|z) + log p(z) for one image x (D,) at every point
    z = (z1[i], z2[j]) of the grid z1 (G1,) x z2 (G2,): (G1, G2) float64.

    The decoder runs on ROWS grid points at a time, in the model's dtype."""
    x = _check_two_d(model, x)
    points = np.stack(np.meshgrid(z1, z2, indexing="ij"), axis=-1).reshape(-1, 2)  # (G1 G2, 2)
    log_joint = np.empty(points.shape[0])
    for r0 in range(0, points.shape[0], ROWS):
        z = points[r0:r0 + ROWS].astype(model.dtype)
        out = model.decoder.forward(model.params, z)[0]                  # (rows, K)
        log_px_given_z = model.likelihood.log_prob_forward(x[None, :], out)[0]       # (rows,)
        log_joint[r0:r0 + ROWS] = log_px_given_z + standard_normal_log_density_forward(z)[0]
    return log_joint.reshape(len(z1), len(z2))


def posterior_box(model, x, mu, std):
    """((lo1, hi1), (lo2, hi2)): the box the fine grid covers.

    A coarse grid of COARSE_POINTS^2 over [-6, 6]^2 (widened to cover q's
    mean +- 5 std) finds the points where log p(x, z) is within DROP = 30
    nats of its largest value (posterior density e^-30 of its peak, and
    less, is left out); the box spans them, one coarse cell more on every
    side, and q(z|x)'s mean +- 5 std, so that both pictures fit."""
    half = np.maximum(COARSE_HALF_WIDTH, np.abs(mu) + Q_STD_MARGIN * std)          # (2,)
    axes = [np.linspace(-h, h, COARSE_POINTS) for h in half]
    log_joint = log_joint_on_grid(model, x, *axes)
    i, j = np.nonzero(log_joint >= log_joint.max() - DROP)
    cells = [2 * h / (COARSE_POINTS - 1) for h in half]
    box = []
    for axis, index, cell, m, s in zip(axes, (i, j), cells, mu, std):
        lo = min(axis[index.min()] - cell, m - Q_STD_MARGIN * s)
        hi = max(axis[index.max()] + cell, m + Q_STD_MARGIN * s)
        box.append((float(lo), float(hi)))
    return tuple(box)


@dataclass
class PosteriorGrid:
    """The posterior of one image on a grid.

    z1 (G1,), z2 (G2,)   the grid's axes (evenly spaced); cell_area = h1 h2
    log_joint (G1, G2)   log p(x, z) at z = (z1[i], z2[j])
    log_px               log p(x) by the midpoint rule on this grid
    quadrature_error     |log_px - the same rule on every other point (spacing 2h)|: the
                         error of the coarser rule, an upper estimate of this one's
    log_posterior        (G1, G2) log p(z|x) = log_joint - log_px
    log_q (G1, G2)       log q(z|x); mu, logvar (2,) its parameters
    """

    z1: np.ndarray
    z2: np.ndarray
    cell_area: float
    log_joint: np.ndarray
    log_px: float
    quadrature_error: float
    log_posterior: np.ndarray
    log_q: np.ndarray
    mu: np.ndarray
    logvar: np.ndarray


def quadrature_log_marginal(log_joint, cell_area):
    """log p(x) ~ log( cell_area * sum_ij exp(log_joint_ij) ), computed as a logsumexp."""
    return float(logsumexp(log_joint) + np.log(cell_area))


def posterior_grid(model, x, points=201):
    """p(z|x) for one image x (D,) of a 2-d latent model on a points x points grid
    over posterior_box; returns a PosteriorGrid (see there)."""
    x = _check_two_d(model, x)
    points = check_positive_int(points, "points")
    if points < 5:
        raise ValueError(f"points must be at least 5 per axis, got {points}")
    mu, logvar = (a[0].astype(np.float64) for a in model.encode(x[None, :]))
    std = np.exp(0.5 * logvar)
    (lo1, hi1), (lo2, hi2) = posterior_box(model, x, mu, std)
    z1, z2 = np.linspace(lo1, hi1, points), np.linspace(lo2, hi2, points)
    cell_area = (z1[1] - z1[0]) * (z2[1] - z2[0])
    log_joint = log_joint_on_grid(model, x, z1, z2)
    log_px = quadrature_log_marginal(log_joint, cell_area)
    coarser = quadrature_log_marginal(log_joint[::2, ::2], 4 * cell_area)
    grid = np.stack(np.meshgrid(z1, z2, indexing="ij"), axis=-1)                   # (G1, G2, 2)
    log_q = gaussian_log_density_forward(grid, mu, logvar)[0]
    return PosteriorGrid(z1, z2, float(cell_area), log_joint, log_px, abs(log_px - coarser),
                         log_joint - log_px, log_q, mu, logvar)


def elbo_by_sampling(model, x, rng, samples=10000):
    """ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || N(0, I)) for one image x (D,), the
    expectation over ``samples`` draws z ~ q(z|x) from ``rng``, the KL in
    closed form.  Returns (elbo, standard error): floats, nats."""
    check_vae(model, "the ELBO")
    check_generator(rng)
    samples = check_positive_int(samples, "samples")
    x = np.asarray(x)
    model.check_input(x[None, :])
    log_px_given_z = np.empty(samples)
    for s0 in range(0, samples, ROWS):
        eps = rng.standard_normal((min(ROWS, samples - s0), 1, model.latent_dim), dtype=model.dtype)
        # the training objectives' forward pass, its k = rows samples of the one image
        log_px_given_z[s0:s0 + ROWS] = sampled_forward(model, x[None, :], eps).logpx[:, 0]
    mu, logvar = model.encode(x[None, :])
    kl = float(kl_standard_normal_forward(mu, logvar)[0][0])
    se = float(np.std(log_px_given_z, ddof=1) / np.sqrt(samples)) if samples > 1 else np.inf
    return float(np.mean(log_px_given_z)) - kl, se
