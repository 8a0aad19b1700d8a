"""Layers as forward/backward pairs: a fully-connected layer and activations.

Every ``*_forward`` returns ``(out, cache)``; the matching ``*_backward``
takes the upstream gradient ``dout = dL/dout`` and that cache and returns
``dL/dinput``.  Shapes: ``N`` examples, ``D`` input features, ``H`` output
features.  All functions work on whole batches and keep the input dtype.

Stable forms.  ``softplus(x) = log(1 + e^x)`` and ``sigmoid(x) = 1/(1 + e^-x)``
overflow for large ``|x|`` if written literally.  They are computed as

    softplus(x) = max(x, 0) + log1p(exp(-|x|))
    sigmoid(x)  = exp(min(x, 0)) / (1 + exp(-|x|))

exact identities in which ``exp`` only ever sees numbers <= 0, so nothing
overflows and both keep full relative precision in the tails.  (The shortcut
``(1 + tanh(x/2)) / 2`` rounds to exactly 0 below x ~ -17 in float32.)

Textbook and fast forms.  Each function implements its formula as written.
Where a tuned form measurably wins on the training path, it sits right after
the textbook one under the same name with ``_fast`` appended, computes the
same values (tests/test_fast_forms.py proves the two agree to rounding), and
the MLP uses it unless it is built with ``textbook=True`` (then every layer
runs the textbook form, so that an edit of it changes the training).  Their
timings are in benchmarks/fast_forms.md.
"""

import numpy as np

LEAKY_RELU_SLOPE = 0.01


# ----------------------------------------------------------------- linear --

def linear_forward(x, W, b):
    """out = x @ W + b.

    x : (N, D), W : (D, H), b : (H,)  ->  out : (N, H); the cache is (x, W).
    """
    out = x @ W
    out += b
    return out, (x, W)


def linear_backward(dout, cache, dW=None, db=None, need_dx=True):
    """Backward of ``out = x @ W + b`` (cache = (x, W) from linear_forward):

        dx = dout @ W.T        (N, D)    dx[n, d] = sum_h dout[n, h] W[d, h]
        dW = x.T @ dout        (D, H)    dW[d, h] = sum_n x[n, d] dout[n, h]
        db = sum_n dout[n]     (H,)      b is added to every row of the batch

    ``dW`` and ``db`` are written into the given arrays when provided (so a
    model can write straight into its gradient buffer).  ``need_dx=False``
    skips ``dx`` for a first layer, whose input is data.
    Returns ``(dx, dW, db)``; ``dx`` is None when not needed.
    """
    x, W = cache
    dx = dout @ W.T if need_dx else None
    dW = np.matmul(x.T, dout, out=dW)
    db = np.sum(dout, axis=0, out=db)
    return dx, dW, db


def linear_backward_fast(dout, cache, dW=None, db=None, need_dx=True):
    """linear_backward with the batch sum db = 1^T dout computed as a BLAS
    matrix-vector product (NumPy runs it faster than np.sum(axis=0))."""
    x, W = cache
    db = np.matmul(np.ones(dout.shape[0], dtype=dout.dtype), dout, out=db)
    dW = np.matmul(x.T, dout, out=dW)
    return (dout @ W.T if need_dx else None), dW, db


# ------------------------------------------------------- stable functions --

def sigmoid(x):
    """sigmoid(x) = 1 / (1 + exp(-x)) = exp(min(x, 0)) / (1 + exp(-|x|)), for any x."""
    num = np.exp(np.minimum(x, 0))
    den = np.exp(-np.abs(x))
    den += 1
    return num / den


def softplus(x):
    """softplus(x) = log(1 + exp(x)) = max(x, 0) + log1p(exp(-|x|))."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def log1p_fast(y):
    """np.log1p(y) for y in [0, 1] (such as exp(-|x|)), to a few eps relative,
    from vectorized operations: NumPy's log1p is a scalar loop, about 8 times
    slower than its log in float32 (benchmarks/fast_forms.md).

    u = fl(1 + y) is 1 + y + delta, and delta = (u - 1) - y is computed
    exactly (u - 1 is exact for u in [1, 2], and so is the difference of two
    numbers within a factor 2 of each other).  Then, to first order in
    delta / u (|delta| <= eps/2 u, so the neglected term is below eps^2):

        log1p(y) = log(u - delta) = log(u) + log(1 - delta/u) = log(u) - delta/u

    Where 1 + y rounds to 1 (y < eps/2), log(u) = 0 and the correction is y
    itself.  Returns (log1p(y), u), u = 1 + y for callers that use it again.
    """
    u = y + 1
    correction = u - 1
    correction -= y                   # delta, exactly
    correction /= u
    value = np.log(u)
    value -= correction
    return value, u


# ------------------------------------------------------------ activations --

def relu_forward(x):
    """out = max(x, 0); the cache is out (x > 0 exactly where out > 0)."""
    out = np.maximum(x, 0)
    return out, out


def relu_forward_fast(x):
    """relu_forward (the same out, and the same cache, out) with the 0 as a row of
    zeros, broadcast: NumPy vectorizes np.maximum of two arrays, not of an array
    and a scalar."""
    out = np.maximum(x, np.zeros(x.shape[-1], dtype=x.dtype))
    return out, out


def relu_backward(dout, out):
    """dx = dout * [x > 0]   (x > 0 exactly where out > 0)."""
    return dout * (out > 0)


def leaky_relu_forward(x):
    """out = x if x > 0 else a*x, with slope a = LEAKY_RELU_SLOPE; the cache is x."""
    return np.where(x > 0, x, LEAKY_RELU_SLOPE * x), x


def leaky_relu_backward(dout, x):
    """dx = dout * (1 if x > 0 else a)."""
    return np.where(x > 0, dout, LEAKY_RELU_SLOPE * dout)


def tanh_forward(x):
    """out = tanh(x); the cache is out (tanh'(x) = 1 - out^2)."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, out):
    """dx = dout * (1 - tanh(x)^2) = dout * (1 - out^2)."""
    return dout * (1 - out * out)


def sigmoid_forward(x):
    """out = sigmoid(x); the cache is out (sigmoid'(x) = out (1 - out))."""
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout, out):
    """dx = dout * sigmoid(x) * (1 - sigmoid(x)) = dout * out * (1 - out)."""
    return dout * out * (1 - out)


def softplus_forward(x):
    """out = softplus(x) = log(1 + exp(x)); the cache is x (softplus'(x) = sigmoid(x))."""
    return softplus(x), x


def softplus_backward(dout, x):
    """dx = dout * softplus'(x) = dout * sigmoid(x)."""
    return dout * sigmoid(x)


# name -> (forward, backward, weight init suited to it): the textbook forms
ACTIVATIONS = {
    "relu": (relu_forward, relu_backward, "he"),
    "leaky_relu": (leaky_relu_forward, leaky_relu_backward, "he"),
    "softplus": (softplus_forward, softplus_backward, "he"),
    "tanh": (tanh_forward, tanh_backward, "glorot"),
    "sigmoid": (sigmoid_forward, sigmoid_backward, "glorot"),
}
# the same with the fast form where there is one: what the models train with
# unless built with textbook=True
ACTIVATIONS_FAST = {**ACTIVATIONS, "relu": (relu_forward_fast, relu_backward, "he")}


def check_activation(name):
    """Raise a ValueError naming the valid choices if ``name`` is unknown."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")


def init_weight(fan_in, fan_out, scheme, rng, dtype):
    """A (fan_in, fan_out) weight matrix.

    'he'     : N(0, 2/fan_in)                     (He et al. 2015, for ReLU-like units)
    'glorot' : U(-a, a), a = sqrt(6/(fan_in+fan_out))  (Glorot & Bengio 2010, tanh/sigmoid/linear)
    """
    if scheme == "he":
        return (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(dtype)
    if scheme == "glorot":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=(fan_in, fan_out)).astype(dtype)
    raise ValueError(f"unknown init scheme {scheme!r}; choose 'he' or 'glorot'")
