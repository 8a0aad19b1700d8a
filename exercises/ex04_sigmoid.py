"""Exercise 4: the backward pass of the logistic sigmoid.

    out = sigmoid(x) = 1 / (1 + exp(-x))        elementwise

Given dout = dL/dout, write sigmoid_backward: return dL/dx.  The forward
keeps ``out`` as its cache.

Hints (docs/backprop_mlp.md, the activations):
  * d sigmoid(x) / dx = sigmoid(x) (1 - sigmoid(x)).  Write it with out.

Check your answer:  python exercises/check.py sigmoid
"""

import numpy as np


def sigmoid_forward(x):
    """x (N, H) -> out (N, H), cache = out.  (Fine for moderate x; the library's
    layers.sigmoid is the form that never overflows.)"""
    out = 1 / (1 + np.exp(-x))
    return out, out


def sigmoid_backward(dout, cache):
    """dout (N, H) -> dx (N, H)."""
    out = cache
    # TODO: dx from dout and out.
    raise NotImplementedError("TODO: sigmoid_backward")
