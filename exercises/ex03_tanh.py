"""Exercise 3: the backward pass of tanh.

    out = tanh(x)          elementwise

Given dout = dL/dout, write tanh_backward: return dL/dx.  The forward keeps
``out`` (not x) as its cache.

Hints (docs/backprop_mlp.md, the activations):
  * d tanh(x) / dx = 1 - tanh(x)^2.  Write it with what the cache holds.

Check your answer:  python exercises/check.py tanh
"""

import numpy as np


def tanh_forward(x):
    """x (N, H) -> out (N, H), cache = out."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """dout (N, H) -> dx (N, H)."""
    out = cache
    # TODO: dx from dout and out.
    raise NotImplementedError("TODO: tanh_backward")
