"""Layers: the linear layer, every activation, the MLP built from them, weight init.

Each backward is checked against central differences (numpyvae.gradcheck) in
float64 with a random upstream gradient dout, the vector-Jacobian product
the backward computes; each forward against an independent formula.
"""

import numpy as np
import pytest
from scipy.special import expit

from gradcheck_helpers import ACTIVATIONS, KINK_MARGIN, TOL, mlp_preactivations, randomize_biases
from numpyvae.gradcheck import numerical_gradient_array, relative_error
from numpyvae.ops.layers import (ACTIVATIONS as LAYER_ACTIVATIONS, LEAKY_RELU_SLOPE, init_weight,
                             linear_backward, linear_forward, sigmoid, softplus)
from numpyvae.model.mlp import MLP
from numpyvae.model.params import FlatParams

# name -> independent reference for the forward
REFERENCE = {
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, LEAKY_RELU_SLOPE * x),
    "tanh": np.tanh,
    "sigmoid": expit,
    "softplus": lambda x: np.logaddexp(0, x),
}


def away_from_zero(rng, shape, margin=0.1):
    """Standard normal values pushed at least ``margin`` away from 0 (the
    ReLU kink), keeping their sign."""
    r = rng.standard_normal(shape)
    return np.sign(r) * (np.abs(r) + margin)


# ----------------------------------------------------------------- linear --

def linear_problem(seed):
    """x (4, 5), W (5, 3), b (3,) and an upstream gradient dout (4, 3)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((4, 5)), rng.standard_normal((5, 3)), rng.standard_normal(3),
            rng.standard_normal((4, 3)))


def test_linear_forward_is_affine():
    x, W, b, _ = linear_problem(0)
    out, _ = linear_forward(x, W, b)
    expected = np.array([[sum(x[n, d] * W[d, h] for d in range(5)) + b[h] for h in range(3)]
                         for n in range(4)])
    np.testing.assert_allclose(out, expected, rtol=1e-13, atol=1e-13)


def test_linear_backward_matches_numerical_dx_dW_db():
    x, W, b, dout = linear_problem(1)
    _, cache = linear_forward(x, W, b)
    dx, dW, db = linear_backward(dout, cache)
    forward = lambda: linear_forward(x, W, b)[0]  # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) <= TOL
    assert relative_error(dW, numerical_gradient_array(forward, W, dout)) <= TOL
    assert relative_error(db, numerical_gradient_array(forward, b, dout)) <= TOL


def test_linear_backward_overwrites_given_buffers_and_can_skip_dx():
    x, W, b, dout = linear_problem(2)
    _, cache = linear_forward(x, W, b)
    _, dW_ref, db_ref = linear_backward(dout, cache)
    dW_buf, db_buf = np.full((5, 3), 7.0), np.full(3, 7.0)   # stale values must not leak in
    dx, dW, db = linear_backward(dout, cache, dW_buf, db_buf, need_dx=False)
    assert dx is None
    assert dW is dW_buf and db is db_buf
    np.testing.assert_array_equal(dW_buf, dW_ref)
    np.testing.assert_array_equal(db_buf, db_ref)


# ------------------------------------------------------------ activations --

@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_backward_matches_numerical(name):
    forward, backward, _ = LAYER_ACTIVATIONS[name]
    rng = np.random.default_rng(3)
    # |x| >= 0.1: a 1e-5 step never crosses the kink of ReLU/LeakyReLU at 0,
    # where the derivative is undefined and central differences average the slopes.
    x = away_from_zero(rng, (4, 6))
    dout = rng.standard_normal((4, 6))
    _, cache = forward(x)
    dx = backward(dout, cache)
    assert relative_error(dx, numerical_gradient_array(lambda: forward(x)[0], x, dout)) <= TOL


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_forward_matches_reference(name):
    """Within a few ulp of 1 in absolute terms, or 1e-14 relative, everywhere
    on [-50, 50] (the relative accuracy of sigmoid's tail is its own test)."""
    forward, _, _ = LAYER_ACTIVATIONS[name]
    x = np.linspace(-50, 50, 401)
    np.testing.assert_allclose(forward(x)[0], REFERENCE[name](x), rtol=1e-14, atol=5e-16)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_sigmoid_is_relatively_accurate_in_the_negative_tail(dtype, rtol):
    """sigmoid(x) for x << 0 is a tiny positive number that floating point
    represents to full relative precision (expit(-40) = 4.2e-18, and 2.1e-9
    at x = -20 in float32).  It is what BernoulliLikelihood.mean returns as
    pixel probabilities, so a value with few correct digits, or 0, makes any
    log of a decoded probability wrong or -inf.  (1 + tanh(x/2)) / 2 cancels
    catastrophically there; e * sigmoid(|x|) with e = exp(-|x|) does not.
    """
    x = np.linspace(-80 if dtype == np.float64 else -40, 0, 161).astype(dtype)
    s = sigmoid(x)
    assert s.dtype == dtype
    assert np.all(s > 0), f"sigmoid underflows to 0 at x = {x[s == 0].max() if np.any(s == 0) else None}"
    np.testing.assert_allclose(s, expit(x.astype(np.float64)), rtol=rtol, atol=0)


@pytest.mark.parametrize("name", ["relu", "leaky_relu"])
def test_piecewise_linear_slopes(name):
    """The two slopes, away from the kink: 1 for x > 0; 0 (ReLU) or a (LeakyReLU) for x < 0."""
    forward, backward, _ = LAYER_ACTIVATIONS[name]
    x = np.array([[-3.0, -0.5, 0.5, 3.0]])
    dx = backward(np.ones_like(x), forward(x)[1])
    negative_slope = 0.0 if name == "relu" else LEAKY_RELU_SLOPE
    np.testing.assert_array_equal(dx, [[negative_slope, negative_slope, 1.0, 1.0]])


def test_stable_sigmoid_and_softplus_never_overflow():
    """The stable forms give the exact values for |x| up to 1000, where the
    literal formulas overflow exp, with no overflow/invalid/divide warning."""
    x = np.concatenate([np.linspace(-1000, 1000, 2001), [-745.2, -40.0, 0.0, 40.0, 745.2]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s, sp = sigmoid(x), softplus(x)
        ds = LAYER_ACTIVATIONS["sigmoid"][1](np.ones_like(x), s)
        dsp = LAYER_ACTIVATIONS["softplus"][1](np.ones_like(x), x)
    np.testing.assert_allclose(s, expit(x), rtol=1e-14, atol=5e-16)
    np.testing.assert_allclose(sp, np.logaddexp(0, x), rtol=1e-15, atol=0)
    assert np.all(np.isfinite(ds)) and np.all(np.isfinite(dsp))
    assert s[0] == 0.0 and s[2000] == 1.0 and sp[2000] == 1000.0 and sp[0] == 0.0


@pytest.mark.parametrize("fn, ref", [(sigmoid, expit), (softplus, lambda x: np.logaddexp(0, x))],
                         ids=["sigmoid", "softplus"])
def test_sigmoid_and_softplus_accept_scalars(fn, ref):
    """Elementwise functions work on 0-d arrays and scalars as well as on batches."""
    for x in (np.array(-3.0), np.float64(2.5), 0.5, np.array(1.5, dtype=np.float32)):
        y = fn(x)
        assert np.ndim(y) == 0
        np.testing.assert_allclose(y, ref(np.float64(x)), rtol=1e-6)


# -------------------------------------------------------------------- MLP --

@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_backward_matches_numerical(activation):
    """Three layers (two activations), gradient w.r.t. every weight, bias and the input."""
    rng = np.random.default_rng(4)
    mlp = MLP("net", (5, 4, 3, 2), activation)
    params = FlatParams(mlp.param_shapes(), np.float64)
    mlp.init_params(params, rng)
    randomize_biases(params, rng)  # zero biases would put dead-ReLU rows exactly on a kink
    x = rng.standard_normal((4, 5))
    dout = rng.standard_normal((4, 2))
    if activation in ("relu", "leaky_relu"):
        _, pre = mlp_preactivations(params, "net", 3, activation, x)
        assert min(np.min(np.abs(a)) for a in pre) >= KINK_MARGIN

    out, caches = mlp.forward(params, x)
    np.testing.assert_allclose(out, mlp_preactivations(params, "net", 3, activation, x)[0],
                               rtol=1e-13, atol=1e-14)
    grads = params.zeros_like()
    dx = mlp.backward(grads, dout, caches)
    forward = lambda: mlp.forward(params, x)[0]  # noqa: E731
    assert relative_error(dx, numerical_gradient_array(forward, x, dout)) <= TOL
    for name, p in params.items():
        assert relative_error(grads[name], numerical_gradient_array(forward, p, dout)) <= TOL, name


def test_mlp_param_layout_and_init():
    rng = np.random.default_rng(5)
    mlp = MLP("enc", (6, 5, 4), "relu")
    assert mlp.param_shapes() == {"enc.0.W": (6, 5), "enc.0.b": (5,),
                                  "enc.1.W": (5, 4), "enc.1.b": (4,)}
    params = FlatParams(mlp.param_shapes(), np.float32)
    params.flat[:] = 1.0
    mlp.init_params(params, rng)
    assert np.all(params["enc.0.b"] == 0) and np.all(params["enc.1.b"] == 0)
    assert params["enc.0.W"].dtype == np.float32
    # the output layer is Glorot-uniform: bounded by sqrt(6 / (fan_in + fan_out))
    assert np.max(np.abs(params["enc.1.W"])) <= np.sqrt(6 / 9)


@pytest.mark.parametrize("sizes", [(3,), (3, 0), (0, 2), ()])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="MLP sizes"):
        MLP("net", sizes, "relu")


# ------------------------------------------------------------ weight init --

def test_init_weight_statistics():
    rng = np.random.default_rng(6)
    he = init_weight(500, 400, "he", rng, np.float64)
    assert he.shape == (500, 400)
    assert abs(he.std() / np.sqrt(2 / 500) - 1) < 0.01   # relative SE of the std ~ 0.0016
    assert abs(he.mean()) < 5 * np.sqrt(2 / 500) / np.sqrt(he.size)
    glorot = init_weight(500, 400, "glorot", rng, np.float32)
    a = np.sqrt(6 / 900)
    assert glorot.dtype == np.float32
    assert np.max(np.abs(glorot)) <= a
    assert abs(glorot.std() / (a / np.sqrt(3)) - 1) < 0.01
    with pytest.raises(ValueError, match="unknown init scheme"):
        init_weight(3, 3, "xavier", rng, np.float64)
