"""posterior_grid.py: log p(x) by quadrature on a grid against the importance-weighted
estimate, and log p(x) - ELBO = KL(q(z|x) || p(z|x)) (docs/collapse.md section 7)."""

import numpy as np
import pytest

from numpyvae import VAE
from numpyvae.evaluate import importance_weighted_log_likelihood
from numpyvae.ops.gaussian import gaussian_log_density_forward, standard_normal_log_density_forward
from numpyvae.optim import Adam
from numpyvae.posterior_grid import (elbo_by_sampling, log_joint_on_grid, posterior_grid,
                                     quadrature_log_marginal)

IW_K = 100_000
# |quadrature - importance-weighted| allowed, nats.  The importance-weighted estimate's
# spread over seeds is about 0.002 nats here at k = 10^5 (0.007 at 2 x 10^4), the
# quadrature's error below 1e-4 (its coarser rule's difference, checked below): 0.01 is
# four of the estimate's standard deviations and a hundred of the rule's error.
LOG_PX_TOLERANCE = 0.01
SE_TOLERANCE = 4.0


@pytest.fixture(scope="module")
def trained_model():
    """A 8-16-2 float64 VAE fitted for 300 Adam steps to noisy copies of 4 binary
    prototypes (so that q(z|x) is near the posterior but not on it), and 3 of the images."""
    model = VAE(8, (16,), 2, dtype=np.float64, seed=0)
    rng = np.random.default_rng(0)
    prototypes = rng.random((4, 8)) < 0.5
    flips = rng.random((64, 8)) >= 0.9
    x = (prototypes[rng.integers(0, 4, 64)] ^ flips).astype(np.float64)
    optimizer = Adam(model.params, lr=1e-2)
    for _ in range(300):
        optimizer.step(model.loss_and_grads(x, rng=rng)[1])
    return model, x[:3]


def test_quadrature_agrees_with_the_importance_weighted_estimate(trained_model):
    model, images = trained_model
    for i, x in enumerate(images):
        grid = posterior_grid(model, x, points=201)
        assert grid.quadrature_error < 1e-4
        iw = importance_weighted_log_likelihood(model, x[None, :], IW_K,
                                                np.random.default_rng(i))[0]
        assert abs(grid.log_px - iw) < LOG_PX_TOLERANCE, (i, grid.log_px, iw)
        # the posterior on the grid is normalised, and so is q (its mass lies inside the box)
        assert np.exp(grid.log_posterior).sum() * grid.cell_area == pytest.approx(1, rel=1e-12)
        assert np.exp(grid.log_q).sum() * grid.cell_area == pytest.approx(1, abs=1e-6)


def test_the_gap_is_the_kl_from_q_to_the_true_posterior(trained_model):
    model, images = trained_model
    for i, x in enumerate(images):
        grid = posterior_grid(model, x, points=201)
        elbo, se = elbo_by_sampling(model, x, np.random.default_rng(10 + i), samples=20000)
        q = np.exp(grid.log_q) * grid.cell_area
        kl_on_grid = float(np.sum(q * (grid.log_q - grid.log_posterior)))
        assert kl_on_grid > 0.05                        # q is not the posterior
        assert elbo < grid.log_px
        assert abs((grid.log_px - elbo) - kl_on_grid) < SE_TOLERANCE * se + 1e-4


def test_log_joint_on_grid_is_the_decoder_and_prior_at_each_point(trained_model):
    model, images = trained_model
    z1, z2 = np.array([-1.0, 0.5]), np.array([0.25, 2.0, -3.0])
    table = log_joint_on_grid(model, images[0], z1, z2)
    assert table.shape == (2, 3)
    z = np.array([[z1[1], z2[2]]])
    direct = model.decoder_forward(images[:1], z)[0][0] + standard_normal_log_density_forward(z)[0][0]
    assert table[1, 2] == pytest.approx(direct, rel=1e-12)


def test_the_midpoint_rule_integrates_a_gaussian():
    """log_joint = log N(z; m, diag(s^2)) + c integrates to c."""
    z1, z2 = np.linspace(-5, 7, 241), np.linspace(-6, 2, 121)   # 8.5 and 7.3 std each side
    grid = np.stack(np.meshgrid(z1, z2, indexing="ij"), axis=-1)
    log_joint = gaussian_log_density_forward(grid, np.array([1.0, -2.0]), np.log([0.5, 0.3]))[0] - 7.5
    area = (z1[1] - z1[0]) * (z2[1] - z2[0])
    assert quadrature_log_marginal(log_joint, area) == pytest.approx(-7.5, abs=1e-10)


def test_bad_models_and_images_are_named():
    with pytest.raises(ValueError, match="2-d latent, got latent_dim 3"):
        posterior_grid(VAE(8, (4,), 3, dtype=np.float64), np.zeros(8))
    with pytest.raises(ValueError, match=r"one image, a \(D,\) array"):
        posterior_grid(VAE(8, (4,), 2, dtype=np.float64), np.zeros((2, 8)))
    with pytest.raises(ValueError, match="points must be at least 5"):
        posterior_grid(VAE(8, (4,), 2, dtype=np.float64), np.zeros(8), points=3)
