"""Exercise 1: the backward pass of a fully-connected (linear) layer.

    out = x @ W + b        x (N, D), W (D, H), b (H,)  ->  out (N, H)

Given dout = dL/dout (N, H), write linear_backward: return dL/dx, dL/dW and
dL/db.  Each gradient has the shape of what it is the gradient of.

Hints (the derivation, in index notation with shape checks, is in
docs/backprop_mlp.md):
  * out[n, h] = sum_d x[n, d] W[d, h] + b[h].  Differentiate one entry, then
    sum over every out[n, h] it touches.
  * Check shapes: (N, H) and (D, H) can only make (N, D) one way.
  * b is added to every row of the batch.

Check your answer:  python exercises/check.py linear
"""

import numpy as np


def linear_forward(x, W, b):
    """x (N, D), W (D, H), b (H,) -> out (N, H), cache."""
    out = x @ W + b
    return out, (x, W)


def linear_backward(dout, cache):
    """dout (N, H) -> (dx (N, D), dW (D, H), db (H,))."""
    x, W = cache
    # TODO: compute dx, dW and db from dout, x and W.
    raise NotImplementedError("TODO: linear_backward")
