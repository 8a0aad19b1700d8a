"""Exercise 10: one step of Adam (Kingma & Ba 2015).

At step t = 1, 2, ..., with gradient g of the parameters p:

    m <- beta1 * m + (1 - beta1) * g          an average of g
    v <- beta2 * v + (1 - beta2) * g^2        an average of g^2
    m_hat = m / (1 - beta1^t)                 bias corrections: m and v start at 0
    v_hat = v / (1 - beta2^t)
    p <- p - lr * m_hat / (sqrt(v_hat) + eps)

Write adam_update: return the new p, m and v (new arrays; leave the inputs
as they are).

Hints (docs/adam.md: why the bias correction, and what eps does):
  * t counts from 1, so at the first step m_hat = g and v_hat = g^2, and every
    parameter moves by about lr.
  * eps is added to sqrt(v_hat), outside the square root.

Check your answer:  python exercises/check.py adam
"""

import numpy as np


def adam_update(p, g, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """p, g, m, v : arrays of one shape; t : int >= 1 -> (p, m, v) after the step."""
    # TODO: the five lines above.
    raise NotImplementedError("TODO: adam_update")
