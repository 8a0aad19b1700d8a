"""Numerical gradients by central differences, and a relative-error measure.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2h)

The truncation error is O(h^2) and the rounding error O(eps_machine / h),
so in float64 h = 1e-5 gives about 1e-10 absolute accuracy for a
well-scaled f.  Always check in float64: in float32 the rounding error alone
is ~1e-3.

To check a backward of your own, use ``check_backward``:

    from numpyvae.gradcheck import check_backward
    from numpyvae.ops.layers import linear_forward, linear_backward

    rows = check_backward(linear_forward, linear_backward,
                          {"x": x, "W": W, "b": b})
    for row in rows:
        print(row)          # x: max rel err 2.1e-11, PASS ...

It copies the inputs to contiguous float64 arrays (so float32 arrays, views
and Python scalars all work), draws a random upstream gradient, and returns
one row per input: the largest relative error between the backward's
gradient and central differences, the ratio analytic / numerical when that
is one constant (a factor of 2 or a flipped sign shows as 2.00 or -1.00),
and whether it passed.
"""

import warnings
from dataclasses import dataclass

import numpy as np

TOL = 1e-6      # default pass mark: max relative error, float64
STEP = 1e-5     # default central-difference step h


def numerical_gradient(f, x, h=STEP):
    """Central-difference gradient of a scalar function ``f()`` with respect
    to the array ``x``, which ``f`` reads and which is perturbed in place
    (and restored).  Returns a float64 array of x's shape.

    ``x`` must be a contiguous NumPy array (a view into it is what ``f``
    would not see); for float32 arrays a warning says that the step is
    swamped by rounding.  ``check_backward`` makes float64 copies for you.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be the NumPy array that f reads (it is perturbed in place), "
                        f"got {type(x).__name__}; to check a function of a Python scalar, "
                        "use check_backward, which wraps scalars in arrays")
    if not x.flags.c_contiguous:
        raise ValueError("x must be C-contiguous so it can be perturbed in place: pass "
                         "np.ascontiguousarray(x) (and let f read that copy), or use "
                         "check_backward, which copies its inputs")
    if x.dtype != np.float64:
        warnings.warn(f"numerical_gradient on a {x.dtype} array: a step of {h:g} is lost to "
                      "rounding outside float64; check in float64 (check_backward copies "
                      "its inputs to float64)", stacklevel=2)
    grad = np.zeros(x.shape, dtype=np.float64)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = float(f())
        flat_x[i] = old - h
        f_minus = float(f())
        flat_x[i] = old
        flat_grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def numerical_gradient_array(f, x, dout, h=STEP):
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


def constant_ratio(analytic, numerical, rtol=1e-3, floor=1e-8):
    """analytic / numerical when that is one constant, else None.

    The ratio is taken over the entries where |numerical| is at least 1e-3
    of its largest value; it is constant when every such ratio is within
    ``rtol`` of their median and every other entry of ``analytic`` is small
    in proportion (so a factor of 2, a flipped sign or a missing 1/N shows
    as 2.0, -1.0 or N; a correct gradient as 1.0).  None when numerical is
    ~0 everywhere (below ``floor``) or the ratio varies.
    """
    a = np.asarray(analytic, dtype=np.float64).ravel()
    n = np.asarray(numerical, dtype=np.float64).ravel()
    if a.shape != n.shape or n.size == 0 or not np.all(np.isfinite(a)):
        return None
    scale = np.max(np.abs(n))
    if scale < floor:
        return None
    big = np.abs(n) >= 1e-3 * scale
    ratios = a[big] / n[big]
    ratio = float(np.median(ratios))
    if np.any(np.abs(ratios - ratio) > rtol * max(abs(ratio), 1e-3)):
        return None
    if np.any(np.abs(a[~big]) > 2e-3 * max(abs(ratio), 1e-3) * scale):
        return None
    return ratio


def check_parameter_gradients(params, loss_and_grads, h=STEP, floor=1e-8, loss=None):
    """Compare a model's analytic gradients with central differences, tensor by tensor.

    params : dict name -> ndarray, read by ``loss_and_grads`` and perturbed in place
    loss_and_grads : () -> (loss, grads), grads with the keys of params
    floor : relative_error's floor
    loss : () -> the loss alone, differentiated numerically (default:
        ``loss_and_grads()[0]``); a forward pass only is cheaper, and the
        objective written again, independently, is the stronger reference
    Returns dict name -> (max |analytic gradient|, max relative error).
    """
    _, grads = loss_and_grads()
    if set(grads) != set(params):
        raise ValueError("grads must have exactly the keys of params")
    loss = (lambda: loss_and_grads()[0]) if loss is None else loss
    analytic = {name: np.array(g, copy=True) for name, g in grads.items()}
    return {name: (float(np.max(np.abs(analytic[name]))),
                   relative_error(analytic[name], numerical_gradient(loss, p, h), floor))
            for name, p in params.items()}


# ------------------------------------------------------- check_backward --

@dataclass(eq=False)
class BackwardCheck:
    """One input's result from check_backward.

    name : the input's name
    max_rel_error : max relative error, analytic vs numerical (relative_error)
    ratio : analytic / numerical when that is one constant (constant_ratio), else None
    passed : max_rel_error <= tol
    analytic, numerical : the two gradients (float64 arrays of the input's shape)
    """

    name: str
    max_rel_error: float
    ratio: float | None
    passed: bool
    analytic: np.ndarray
    numerical: np.ndarray

    def __str__(self):
        ratio = "" if self.ratio is None else f", analytic = {self.ratio:.2f} x numerical"
        return (f"{self.name}: max rel err {self.max_rel_error:.1e}{ratio}, "
                f"{'PASS' if self.passed else 'FAIL'}")


def _float64_copies(inputs):
    """{name: contiguous float64 copy}, warning once about any lower-precision input."""
    if isinstance(inputs, dict):
        items = list(inputs.items())
    else:
        items = [(f"input {i}", value) for i, value in enumerate(inputs)]
    copies, low_precision = {}, []
    for name, value in items:
        array = np.asarray(value)
        if array.dtype.kind not in "fiub":
            raise TypeError(f"input {name!r} must be numeric (an array or a number), "
                            f"got {type(value).__name__} of dtype {array.dtype}")
        if array.dtype.kind == "f" and array.dtype.itemsize < 8:
            low_precision.append(f"{name!r} is {array.dtype}")
        copies[name] = np.array(array, dtype=np.float64, order="C", copy=True)
    if low_precision:
        warnings.warn(f"input {', '.join(low_precision)}: checking on float64 copies "
                      "(central differences in float32 are swamped by rounding); make sure "
                      "forward and backward keep the dtype they are given", stacklevel=3)
    return copies


def check_backward(forward, backward, inputs, wrt=None, dout=None, tol=TOL, h=STEP, seed=0,
                   floor=1e-8):
    """Check ``backward`` against central differences of ``forward``, input by input.

    forward : (*inputs) -> (out, cache), in the library's convention
    backward : (dout, cache) -> one gradient, or a tuple with one gradient per
        checked input (in the order of ``wrt``; extra trailing values are ignored)
    inputs : dict name -> array or number (or a sequence, named 'input 0', ...),
        passed to forward positionally in this order.  Each is copied to a
        contiguous float64 array, so float32 arrays (with a warning), views
        and Python scalars all work; forward only ever sees the copies.
    wrt : names of the inputs backward returns gradients for (default: all)
    dout : upstream gradient of out's shape (default: standard normal draws
        from ``seed``; 1.0 when out is a scalar)
    tol : pass mark on the max relative error; h : the central-difference step
    floor : relative_error's floor (entries with |analytic| + |numerical| below
        it are compared in absolute terms, as a fraction of it)

    Returns a list with one BackwardCheck per name in ``wrt``.  The
    numerical gradient is that of sum(forward(...)[0] * dout), the
    vector-Jacobian product a backward computes.
    """
    copies = _float64_copies(inputs)
    names = list(copies)
    wrt = names if wrt is None else list(wrt)
    unknown = [name for name in wrt if name not in copies]
    if unknown:
        raise ValueError(f"wrt names {unknown} are not inputs; the inputs are {names}")
    args = list(copies.values())

    def run_forward():
        result = forward(*args)
        if not (isinstance(result, tuple) and len(result) == 2):
            raise TypeError(f"forward must return (out, cache), got {type(result).__name__}; "
                            "wrap a plain function f as lambda *a: (f(*a), None)")
        return result

    out, cache = run_forward()
    out = np.asarray(out, dtype=np.float64)
    if dout is None:
        dout = np.random.default_rng(seed).standard_normal(out.shape) if out.ndim else np.float64(1.0)
    dout = np.array(dout, dtype=np.float64)
    if dout.shape != out.shape:
        raise ValueError(f"dout has shape {dout.shape}, forward's output {out.shape}")
    grads = backward(dout, cache)
    if not isinstance(grads, (tuple, list)):
        grads = (grads,)
    if len(grads) < len(wrt):
        raise ValueError(f"backward returned {len(grads)} gradient(s) for {len(wrt)} "
                         f"checked input(s) {wrt}; pass wrt= to name the inputs it returns")
    rows = []
    for name, grad in zip(wrt, grads):
        analytic = np.array(grad, dtype=np.float64, copy=True)
        if analytic.shape != copies[name].shape:
            raise ValueError(f"the gradient for {name!r} has shape {analytic.shape}, "
                             f"the input {copies[name].shape}")
        numerical = numerical_gradient_array(lambda: run_forward()[0], copies[name], dout, h)
        error = relative_error(analytic, numerical, floor)
        rows.append(BackwardCheck(name, error, constant_ratio(analytic, numerical),
                                  bool(error <= tol), analytic, numerical))
    return rows
