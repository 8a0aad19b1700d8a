"""Numerical gradients by central differences, and a relative-error measure.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)

The truncation error is O(h^2) and the rounding error O(eps_machine / h),
so in float64 h = 1e-5 gives about 1e-10 absolute accuracy for a
well-scaled f.  Always check in float64: in float32 the rounding error alone
is ~1e-3.
"""

import numpy as np


def numerical_gradient(f, x, h=1e-5):
    """Central-difference gradient of a scalar function ``f()`` with respect
    to the array ``x``, which ``f`` reads and which is perturbed in place
    (and restored).  Returns an array of x's shape."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat_x, x):
        raise ValueError("x must be contiguous so it can be perturbed in place")
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = float(f())
        flat_x[i] = old - h
        f_minus = float(f())
        flat_x[i] = old
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(f, x, dout, h=1e-5):
    """Numerical gradient of ``sum(f() * dout)`` with respect to ``x``: the
    vector-Jacobian product that an op's backward computes for upstream
    gradient ``dout``."""
    return numerical_gradient(lambda: np.sum(f() * dout), x, h)


def relative_error(a, b, floor=1e-8):
    """max_i |a_i - b_i| / max(|a_i| + |b_i|, floor)

    Scale-free where gradients are large; the ``floor`` keeps entries that
    are both ~0 from dividing noise by noise (an absolute error below
    ``floor`` counts as relative error < 1)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)))


def check_parameter_gradients(params, loss_and_grads, h=1e-5):
    """Compare a model's analytic gradients with central differences, tensor by tensor.

    params : dict name -> ndarray, read by ``loss_and_grads`` and perturbed in place
    loss_and_grads : () -> (loss, grads), grads with the keys of params
    Returns dict name -> (max |analytic gradient|, max relative error).
    """
    _, grads = loss_and_grads()
    if set(grads) != set(params):
        raise ValueError("grads must have exactly the keys of params")
    analytic = {name: np.array(g, copy=True) for name, g in grads.items()}
    return {name: (float(np.max(np.abs(analytic[name]))),
                   relative_error(analytic[name],
                                  numerical_gradient(lambda: loss_and_grads()[0], p, h)))
            for name, p in params.items()}
