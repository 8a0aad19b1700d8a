"""numpyvae.gradcheck: check_backward (float64 copies, float32 warning, views,
scalars, one row per input, the constant ratio) and the low-level helpers'
clear errors."""

import warnings

import numpy as np
import pytest

from numpyvae.ops.gaussian import reparameterize_backward, reparameterize_forward
from numpyvae.gradcheck import (BackwardCheck, check_backward, constant_ratio, numerical_gradient,
                                relative_error)
from numpyvae.ops.layers import linear_backward, linear_forward, tanh_backward, tanh_forward


def linear_inputs(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {"x": rng.standard_normal((4, 5)).astype(dtype),
            "W": rng.standard_normal((5, 3)).astype(dtype),
            "b": rng.standard_normal(3).astype(dtype)}


def test_one_passing_row_per_input_with_ratio_one():
    rows = check_backward(linear_forward, linear_backward, linear_inputs())
    assert [row.name for row in rows] == ["x", "W", "b"]
    for row in rows:
        assert isinstance(row, BackwardCheck)
        assert row.passed and row.max_rel_error <= 1e-8
        assert row.ratio == pytest.approx(1.0, abs=1e-6)
        assert relative_error(row.analytic, row.numerical) == row.max_rel_error
        assert "PASS" in str(row) and row.name in str(row)


def test_a_wrong_backward_fails_and_the_ratio_names_the_factor():
    def half_db(dout, cache):           # db off by a factor of 1/2, dx sign flipped
        dx, dW, db = linear_backward(dout, cache)
        return -dx, dW, db / 2
    rows = {row.name: row for row in check_backward(linear_forward, half_db, linear_inputs(1))}
    assert rows["W"].passed
    assert not rows["x"].passed and rows["x"].ratio == pytest.approx(-1.0)
    assert not rows["b"].passed and rows["b"].ratio == pytest.approx(0.5)
    assert "analytic = 0.50 x numerical" in str(rows["b"]) and "FAIL" in str(rows["b"])


def test_float32_inputs_warn_and_are_checked_in_float64():
    inputs = linear_inputs(2, np.float32)
    before = {k: v.copy() for k, v in inputs.items()}
    seen = []

    def forward(x, W, b):
        seen.append(x.dtype)
        return linear_forward(x, W, b)
    with pytest.warns(UserWarning, match="'x' is float32, 'W' is float32, 'b' is float32: checking on float64 copies"):
        rows = check_backward(forward, linear_backward, inputs)
    assert all(row.passed for row in rows)
    assert set(seen) == {np.dtype(np.float64)}
    for k in inputs:                                   # the caller's arrays are untouched
        assert inputs[k].dtype == np.float32
        np.testing.assert_array_equal(inputs[k], before[k])


def test_float64_inputs_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_backward(linear_forward, linear_backward, linear_inputs(3))


def test_views_and_python_scalars_work():
    """A transposed slice (not contiguous) and a Python float as inputs, and a
    backward that returns a gradient for the scalar too."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((6, 8))
    view = base[::2, 1::2].T                          # (4, 3), not contiguous
    assert not view.flags.c_contiguous

    def forward(x, c):
        return c * x * x, (x, c)

    def backward(dout, cache):
        x, c = cache
        return 2 * c * x * dout, np.sum(x * x * dout)
    rows = check_backward(forward, backward, {"x": view, "c": 1.5})
    assert [row.name for row in rows] == ["x", "c"]
    assert all(row.passed for row in rows), rows
    assert rows[1].analytic.shape == ()


def test_wrt_checks_only_the_named_inputs():
    rng = np.random.default_rng(5)
    inputs = {"mu": rng.standard_normal((3, 2)), "logvar": rng.standard_normal((3, 2)),
              "eps": rng.standard_normal((3, 2))}
    rows = check_backward(reparameterize_forward, reparameterize_backward, inputs,
                          wrt=("mu", "logvar"))
    assert [row.name for row in rows] == ["mu", "logvar"] and all(row.passed for row in rows)
    with pytest.raises(ValueError, match="returned 2 gradient.*3 checked input"):
        check_backward(reparameterize_forward, reparameterize_backward, inputs)


def test_sequence_inputs_are_named_by_position_and_dout_can_be_given():
    x = np.random.default_rng(6).standard_normal((2, 3))
    rows = check_backward(tanh_forward, tanh_backward, [x], dout=np.ones((2, 3)))
    assert rows[0].name == "input 0" and rows[0].passed
    np.testing.assert_allclose(rows[0].analytic, 1 - np.tanh(x) ** 2, rtol=1e-12)


@pytest.mark.parametrize("call, error, message", [
    (lambda: check_backward(linear_forward, linear_backward, linear_inputs(), wrt=["y"]),
     ValueError, r"wrt names \['y'\] are not inputs"),
    (lambda: check_backward(lambda x: x, lambda d, c: d, {"x": np.ones(2)}),
     TypeError, r"forward must return \(out, cache\)"),
    (lambda: check_backward(lambda x: (x, x), lambda d, c: d[:1], {"x": np.ones(2)}),
     ValueError, r"gradient for 'x' has shape \(1,\), the input \(2,\)"),
    (lambda: check_backward(lambda x: (x, x), lambda d, c: d, {"x": np.ones(2)}, dout=np.ones(3)),
     ValueError, r"dout has shape \(3,\)"),
    (lambda: check_backward(lambda x: (x, x), lambda d, c: d, {"x": "abc"}),
     TypeError, r"input 'x' must be numeric"),
])
def test_bad_calls_raise_clear_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ------------------------------------------------- numerical_gradient itself --

def test_numerical_gradient_explains_what_to_do_with_a_view_or_a_scalar():
    x = np.ones((4, 4))
    with pytest.raises(ValueError, match="ascontiguousarray.*check_backward"):
        numerical_gradient(lambda: 0.0, x[:, ::2])
    with pytest.raises(TypeError, match="Python scalar|float"):
        numerical_gradient(lambda: 0.0, 2.0)


def test_numerical_gradient_warns_on_float32():
    x = np.ones(3, dtype=np.float32)
    with pytest.warns(UserWarning, match="float32.*rounding"):
        numerical_gradient(lambda: float(np.sum(x * x)), x)


# ------------------------------------------------------------ the ratio --

@pytest.mark.parametrize("factor", [2.0, 0.5, -1.0, 0.0, 4.0, 1.0])
def test_constant_ratio_finds_the_factor(factor):
    numerical = np.random.default_rng(7).standard_normal((3, 4))
    assert constant_ratio(factor * numerical, numerical) == pytest.approx(factor)


def test_constant_ratio_is_none_when_the_ratio_varies_or_numerical_vanishes():
    numerical = np.random.default_rng(8).standard_normal((3, 4))
    wrong = numerical.copy()
    wrong[0, 0] *= 3
    assert constant_ratio(wrong, numerical) is None
    assert constant_ratio(numerical.T.copy().reshape(3, 4), numerical) is None
    assert constant_ratio(numerical, np.zeros((3, 4))) is None
    assert constant_ratio(np.full((3, 4), np.nan), numerical) is None
