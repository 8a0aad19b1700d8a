"""Exercise 7: the Bernoulli decoder's log-likelihood, backward.

The decoder outputs logits l (N, D); pixel d is 1 with probability sigmoid(l_d):

    log p(x|l) = sum_d [ x_d * l_d - softplus(l_d) ],    softplus(l) = log(1 + exp(l))

Given dlogp = dL/dlog p (N,), one number per example, write
log_prob_backward: return dL/dlogits (N, D).

Hints (docs/bernoulli.md):
  * d softplus(l) / dl = sigmoid(l).
  * Then multiply by each example's dlogp (dlogp[:, None]).

Check your answer:  python exercises/check.py bernoulli
"""

import numpy as np


def softplus(l):
    """log(1 + exp(l)), without overflow."""
    return np.maximum(l, 0) + np.log1p(np.exp(-np.abs(l)))


def sigmoid(l):
    return 1 / (1 + np.exp(-l))


def log_prob_forward(x, logits):
    """x, logits (N, D) -> log p(x|l) (N,), cache (x, logits)."""
    logp = np.sum(x * logits - softplus(logits), axis=1)
    return logp, (x, logits)


def log_prob_backward(dlogp, cache):
    """dlogp (N,) -> dlogits (N, D)."""
    x, logits = cache
    # TODO: dlogits from dlogp, x and logits.
    raise NotImplementedError("TODO: log_prob_backward")
