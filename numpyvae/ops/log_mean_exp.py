"""The importance-weighted bound's last step, log-mean-exp, as a forward/backward pair.

    L_n = log (1/k) sum_j exp(a_jn)                    a (k, N) log-weights -> L (N,)
    dL_n / da_jn = exp(a_jn) / sum_i exp(a_in)         = softmax_j(a_jn), the normalised weights w~

Written literally, exp(a) overflows for log-weights of a few hundred nats
(log p(x|z) of an MNIST image is about -100) and underflows to 0 for
large negative ones.  The stable form subtracts each column's largest entry
m_n = max_j a_jn first, which changes neither value:

    L_n  = m_n + log sum_j exp(a_jn - m_n) - log k
    w~_jn = exp(a_jn - m_n) / sum_i exp(a_in - m_n)

Every exp then sees a number <= 0, the largest term is exactly 1, and the sum
is in [1, k].  scipy.special.logsumexp and softmax compute the same numbers
(tests/test_log_mean_exp.py), but at the (k, N) = (5, 20) of an IWAE
training step their per-call overhead costs ten times these few NumPy calls
(benchmarks/fast_forms.md); every IWAE training step runs this, and
objectives.bound('iwae') too.
"""

import math

import numpy as np


def log_mean_exp_forward(a):
    """a (k, N) -> (L (N,), cache): L_n = log (1/k) sum_j exp(a_jn), stably.

    The cache is the softmax weights w~ (k, N), each column summing to 1."""
    m = np.max(a, axis=0)                        # (N,)
    weights = np.exp(a - m)                      # (k, N), in (0, 1]
    total = np.sum(weights, axis=0)              # (N,), in [1, k]
    weights /= total                             # softmax_j
    return m + np.log(total) - math.log(a.shape[0]), weights


def log_mean_exp_backward(dL, weights):
    """dL (N,) -> da (k, N):  da_jn = dL_n * w~_jn."""
    return dL * weights
