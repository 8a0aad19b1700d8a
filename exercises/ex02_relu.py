"""Exercise 2: the backward pass of ReLU.

    out = max(x, 0)        elementwise, x (N, H)

Given dout = dL/dout, write relu_backward: return dL/dx.  The forward keeps
``out`` as its cache.

Hints (docs/backprop_mlp.md, the activations):
  * The derivative of max(x, 0) is 1 where x > 0 and 0 where x < 0.
  * Where is x > 0?  Exactly where out > 0.

Check your answer:  python exercises/check.py relu
"""

import numpy as np


def relu_forward(x):
    """x (N, H) -> out (N, H), cache = out."""
    out = np.maximum(x, 0)
    return out, out


def relu_backward(dout, cache):
    """dout (N, H) -> dx (N, H)."""
    out = cache
    # TODO: dx from dout and out.
    raise NotImplementedError("TODO: relu_backward")
