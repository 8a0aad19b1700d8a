"""Checks of the arguments a user passes in, shared by every public function.

Each check raises a TypeError when the value has the wrong Python type and a
ValueError when it has the right type but a wrong value, and names the
argument as the caller wrote it (``name`` is e.g. "lr", "k" or, from the
command line, "--lr"):

    check_int(value, name, lo=None)          an int (not bool) >= lo; returns int
    check_positive_int(value, name)          an int >= 1; returns int
    check_float(value, name, lo, hi, ...)    a finite real number in a range; returns float
    check_choice(value, name, choices)       one of the strings ``choices``
    check_generator(rng, name)               a numpy.random.Generator
    check_vae(model, what, kinds)            a VAE (a model with an encoder q(z|x))

The finiteness rule of numpyvae: numbers a user gives are finite, and a
computation that turns finite input into NaN or inf raises NonFiniteError
(``check_finite``) saying what was not finite, instead of returning it.
"""

import math
import numbers

import numpy as np


class NonFiniteError(ValueError, ArithmeticError):
    """A computation on finite input gave NaN or inf (an overflow); the
    message says which quantity and what to do."""


def check_int(value, name, lo=None):
    """``value`` as an int; TypeError unless an integer (bool excluded), ValueError if < lo."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {_show(value)}")
    if lo is not None and value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value}")
    return int(value)


def check_positive_int(value, name):
    """``value`` as an int >= 1 (see check_int)."""
    return check_int(value, name, lo=1)


def check_float(value, name, lo=None, hi=None, lo_open=False, hi_open=False):
    """``value`` as a finite float in the range [lo, hi] (an end open if ``*_open``;
    None for no bound).  TypeError unless a real number (bool excluded),
    ValueError if NaN, infinite or out of range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {_show(value)}")
    value = float(value)
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    if not math.isfinite(value) or below or above:
        raise ValueError(f"{name} must be a finite number{_range(lo, hi, lo_open, hi_open)}, "
                         f"got {value!r}")
    return value


def check_choice(value, name, choices):
    """``value`` unchanged if it is one of the strings ``choices``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {tuple(choices)}, got {_show(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_plain_array(value, name):
    """``value`` unchanged if it is a plain numpy array of numbers; else a TypeError
    naming ``name``: for None or a list, for an ndarray subclass (np.matrix,
    a masked array: their operators and reductions are not ndarray's, so the
    formulas would not mean what they say) and for an array of objects."""
    if type(value) is not np.ndarray:
        if isinstance(value, np.ndarray):
            raise TypeError(f"{name} must be a plain numpy array, got the subclass "
                            f"{type(value).__name__}: pass np.asarray({name}) (for a masked "
                            "array, fill or drop the masked entries first)")
        raise TypeError(f"{name} must be a numpy array, got {type(value).__name__}")
    if value.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got an array of dtype {value.dtype}")
    return value


def check_generator(rng, name="rng"):
    """``rng`` unchanged if it is a numpy.random.Generator (legacy RandomState is not)."""
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name} must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {_show(rng)}")
    return rng


def check_vae(model, what, kinds=None):
    """``model`` unchanged if it is a VAE (has an encoder q(z|x): the ``posterior``
    of vae.VAE or of a subclass), of one of ``kinds`` if given (e.g. the kinds
    one module's objectives train); ``what`` needs it."""
    if getattr(model, "posterior", None) is None or (
            kinds is not None and getattr(model, "kind", None) not in kinds):
        wanted = f" of kind {' or '.join(kinds)}" if kinds else ""
        raise TypeError(f"{what} needs a VAE (an encoder q(z|x)){wanted}, "
                        f"got {type(model).__name__}")
    return model


def check_finite(value, what, advice=""):
    """Raise NonFiniteError "<what> is <value>..." unless the float ``value`` is finite."""
    if not math.isfinite(value):
        raise NonFiniteError(f"{what} is {value}" + (f": {advice}" if advice else ""))


def _range(lo, hi, lo_open, hi_open):
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo:g}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi:g}"
    return ""


def _show(value):
    """How a wrongly typed value is shown: its repr and, if that does not say it, its type."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    kind = type(value).__name__
    return text if isinstance(value, (str, int, float)) else f"{text} ({kind})"
