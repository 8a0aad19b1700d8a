"""Turn uint8 pixels x in {0, ..., 255} into model inputs in [0, 1].

    mode          output                       use
    "none"        x / 255                      grey levels (e.g. a Gaussian or
                                               continuous-Bernoulli likelihood)
    "threshold"   1[x / 255 > 0.5] = 1[x >= 128]    a fixed binary dataset
    "dynamic"     b ~ Bernoulli(x / 255)       a fresh binary sample on every
                                               call (dynamic binarization)

Dynamic binarization, exactly and cheaply.  With u drawn uniformly from the
255 integers {0, 1, ..., 254},

    P(u < x) = #{u : u < x} / 255 = x / 255      for every x in {0, ..., 255},

so ``u < x`` is an exact Bernoulli(x / 255) draw: never 1 for x = 0, always
1 for x = 255.  It costs one random byte and one uint8 comparison per pixel,
where ``rng.random() < x / 255`` needs a float draw and the float x / 255.
The bytes are drawn by rejection sampling (``uniform_below_255``): raw
random bytes are uniform on {0, ..., 255}; each 255 is redrawn until none
is left, which leaves every draw uniform on {0, ..., 254}.  That is faster
than ``rng.integers(0, 255, dtype=np.uint8)``, which draws each bounded
byte on its own (timings: benchmarks/fast_forms.md).

All functions take x : (...) uint8 and return the same shape in the float
dtype asked for (float32 or float64), computed without wider temporaries;
``out``, if given, must have that shape and dtype and is written and returned.
"""

import numpy as np

BINARIZE_MODES = ("none", "dynamic", "threshold")


def to_unit_interval(x, dtype=np.float32, out=None):
    """x / 255 in [0, 1], correctly rounded in ``dtype`` (as PyTorch's ToTensor)."""
    dtype = _check(x, dtype, out)
    return np.divide(x, dtype.type(255), out=out, dtype=dtype)


def binarize(x, mode, rng=None, dtype=np.float32, out=None):
    """Model input of mode "none", "threshold" or "dynamic" (see module docstring).

    x : (...) uint8 pixels  ->  (...) dtype values in [0, 1] ({0, 1} if binary).
    rng : a seeded np.random.Generator (np.random.default_rng(seed)), required
        for "dynamic"; two calls with equally seeded generators give equal draws.
    """
    if mode not in BINARIZE_MODES:
        raise ValueError(f"unknown binarize mode {mode!r}; valid modes: {BINARIZE_MODES}")
    if mode == "none":
        return to_unit_interval(x, dtype, out)
    if mode == "dynamic" and not isinstance(rng, np.random.Generator):
        raise ValueError(f"binarize mode 'dynamic' needs rng=np.random.Generator, got {rng!r}")
    dtype = _check(x, dtype, out)
    if out is None:
        out = np.empty(x.shape, dtype=dtype)
    if mode == "threshold":
        return np.greater_equal(x, 128, out=out)
    return np.less(uniform_below_255(rng, x.shape), x, out=out)


def uniform_below_255(rng, shape):
    """uint8 array of ``shape``, each entry uniform on {0, ..., 254}, by rejection."""
    u = np.frombuffer(bytearray(rng.bytes(int(np.prod(shape)))), dtype=np.uint8)
    redraw = np.flatnonzero(u == 255)          # about 1 in 256
    while redraw.size:
        u[redraw] = np.frombuffer(rng.bytes(redraw.size), dtype=np.uint8)
        redraw = redraw[u[redraw] == 255]
    return u.reshape(shape)


def _check(x, dtype, out):
    """Validate the arguments shared by both functions; return np.dtype(dtype)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got dtype {getattr(x, 'dtype', type(x))}")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"output dtype must be float32 or float64, got {dtype}")
    if out is not None and (out.shape != x.shape or out.dtype != dtype):
        raise ValueError(f"out must be {dtype} {x.shape}, got {out.dtype} {out.shape}")
    return dtype
