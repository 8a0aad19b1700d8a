"""The argument checks every public function shares (validate.py)."""

import math

import numpy as np
import pytest

from numpyvae.util.validate import (NonFiniteError, check_choice, check_finite, check_float,
                               check_generator, check_int, check_positive_int)


@pytest.mark.parametrize("value, expected", [(3, 3), (np.int64(3), 3), (np.uint8(0), 0)])
def test_check_int_accepts_integers_and_returns_python_ints(value, expected):
    result = check_int(value, "n", lo=0)
    assert result == expected and type(result) is int


@pytest.mark.parametrize("call, error, message", [
    (lambda: check_int(2.7, "latent_dim"), TypeError, "latent_dim must be an integer, got 2.7"),
    (lambda: check_int(True, "k"), TypeError, "k must be an integer, got True"),
    (lambda: check_int("3", "--epochs"), TypeError, "--epochs must be an integer, got '3'"),
    (lambda: check_int(None, "n"), TypeError, "n must be an integer, got None"),
    (lambda: check_int(-1, "--seed", lo=0), ValueError, "--seed must be an integer >= 0, got -1"),
    (lambda: check_positive_int(0, "n"), ValueError, "n must be an integer >= 1, got 0"),
    (lambda: check_float("1", "beta"), TypeError, "beta must be a number, got '1'"),
    (lambda: check_float(False, "beta"), TypeError, "beta must be a number, got False"),
    (lambda: check_float(math.nan, "beta", lo=0), ValueError,
     "beta must be a finite number >= 0, got nan"),
    (lambda: check_float(math.inf, "lr", lo=0, lo_open=True), ValueError,
     "lr must be a finite number > 0, got inf"),
    (lambda: check_float(-math.inf, "x"), ValueError, "x must be a finite number, got -inf"),
    (lambda: check_float(0.0, "lr", lo=0, lo_open=True), ValueError, "got 0.0"),
    (lambda: check_float(1.0, "b", lo=0, hi=1, hi_open=True), ValueError,
     r"b must be a finite number in [0, 1), got 1.0"),
    (lambda: check_float(2.0, "p", hi=1), ValueError, "p must be a finite number <= 1, got 2.0"),
    (lambda: check_choice("gelu", "--activation", ("relu", "tanh")), ValueError,
     "--activation must be one of ('relu', 'tanh'), got 'gelu'"),
    (lambda: check_choice(3, "objective", ("elbo",)), TypeError, "objective must be a string"),
    (lambda: check_generator(0), TypeError, "rng must be a numpy.random.Generator"),
    (lambda: check_generator(None, "rng"), TypeError, "got None"),
    (lambda: check_generator(np.random.RandomState(0)), TypeError, "(RandomState)"),
    (lambda: check_finite(math.inf, "the KL term", "scale the data"), NonFiniteError,
     "the KL term is inf: scale the data"),
])
def test_each_check_raises_the_right_error_naming_the_argument(call, error, message):
    with pytest.raises(error) as e:
        call()
    assert message in str(e.value)


def test_check_float_returns_a_python_float_and_accepts_the_ends_of_closed_ranges():
    assert type(check_float(np.float32(0.5), "x")) is float
    assert check_float(0, "x", lo=0, hi=1) == 0.0 and check_float(1, "x", lo=0, hi=1) == 1.0
    rng = np.random.default_rng(0)
    assert check_generator(rng) is rng
    check_finite(1e300, "a big but finite number")


def test_non_finite_error_is_both_a_value_error_and_an_arithmetic_error():
    assert issubclass(NonFiniteError, ValueError) and issubclass(NonFiniteError, ArithmeticError)
