"""reproductions/frey_plateau.py: the closed-form plateau bound of a per-pixel Gaussian."""

import numpy as np
import pytest
from scipy.stats import norm

import frey_plateau as fp
from numpyvae.data.frey import frey_split


def test_plateau_bound_is_the_fitted_gaussians_log_density():
    rng = np.random.default_rng(0)
    x_train, x_test = rng.uniform(0.1, 0.9, (50, 7)), rng.uniform(0.1, 0.9, (20, 7))
    train, test = fp.plateau_bounds(x_train, x_test)
    mean, std = x_train.mean(0), x_train.std(0)
    assert train == pytest.approx(norm.logpdf(x_train, mean, std).sum(1).mean(), rel=1e-12)
    assert test == pytest.approx(norm.logpdf(x_test, mean, std).sum(1).mean(), rel=1e-12)
    # the maximum-likelihood fit: moving the means or the variances lowers the training bound
    shifted = fp.plateau_bounds(x_train + 0.01, x_train)[1]
    assert shifted < train


def test_scaling_moves_both_bounds_by_the_jacobian():
    """x / 256 instead of x / 255: both bounds rise by D log(256 / 255), exactly."""
    faces = np.random.default_rng(1).integers(8, 239, (120, 560), dtype=np.uint8)
    train, test = frey_split(120, n_test=30)
    at_255 = np.array(fp.split_bounds(faces, train, test, 255))
    at_256 = np.array(fp.split_bounds(faces, train, test, 256))
    np.testing.assert_allclose(at_256 - at_255, 560 * np.log(256 / 255), rtol=1e-9)
