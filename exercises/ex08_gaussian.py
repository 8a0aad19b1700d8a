"""Exercise 8: the Gaussian decoder with a learned variance, backward.

The decoder outputs a mean and a log-variance per pixel, each (N, D):

    log p(x|z) = -1/2 * sum_d [ (x_d - mean_d)^2 * exp(-logvar_d) + logvar_d + log(2 pi) ]

Given dlogp = dL/dlog p (N,), write log_prob_backward: return dL/dmean and
dL/dlogvar, each (N, D).

Hints (docs/gaussian_decoder.md):
  * d/dmean of -(x - mean)^2 / (2 var) is (x - mean) / var.
  * d/dlogvar of -1/2 [ (x - mean)^2 exp(-logvar) + logvar ]: two terms,
    and the 1/2 in front of both.

Check your answer:  python exercises/check.py gaussian
"""

import numpy as np

LOG_2PI = np.log(2 * np.pi)


def log_prob_forward(x, mean, logvar):
    """x, mean, logvar (N, D) -> log p(x|z) (N,), cache (x - mean, exp(-logvar))."""
    diff, precision = x - mean, np.exp(-logvar)
    logp = -0.5 * np.sum(diff ** 2 * precision + logvar + LOG_2PI, axis=1)
    return logp, (diff, precision)


def log_prob_backward(dlogp, cache):
    """dlogp (N,) -> (dmean (N, D), dlogvar (N, D))."""
    diff, precision = cache
    # TODO: dmean and dlogvar from dlogp, diff and precision.
    raise NotImplementedError("TODO: log_prob_backward")
