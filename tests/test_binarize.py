"""Binarization modes: values against float64 references, Monte Carlo checks, dtypes, errors."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis.extra.numpy import array_shapes, arrays

from numpyvae.data.binarize import BINARIZE_MODES, binarize, to_unit_interval, uniform_below_255

LEVELS = np.arange(256, dtype=np.uint8)  # every possible pixel value
FLOATS = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", FLOATS)
def test_none_is_x_over_255_correctly_rounded(dtype):
    reference = (LEVELS / 255.0).astype(dtype)  # float64 quotient, rounded once
    for y in (to_unit_interval(LEVELS, dtype), binarize(LEVELS, "none", dtype=dtype)):
        assert y.dtype == dtype
        assert y[0] == 0 and y[255] == 1 and np.all(np.diff(y) > 0)
        np.testing.assert_array_equal(y, reference)


@pytest.mark.parametrize("dtype", FLOATS)
def test_threshold_is_x_at_least_128(dtype):
    y = binarize(LEVELS, "threshold", dtype=dtype)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, (LEVELS / 255.0 > 0.5).astype(dtype))
    assert y[127] == 0 and y[128] == 1


@pytest.mark.parametrize("dtype", FLOATS)
def test_dynamic_mean_is_x_over_255(dtype):
    n = 20_000  # draws per grey level
    x = np.tile(LEVELS, (n, 1))  # (n, 256)
    y = binarize(x, "dynamic", rng=np.random.default_rng(0), dtype=dtype)
    assert y.dtype == dtype and set(np.unique(y)) == {0.0, 1.0}
    p = LEVELS / 255.0
    mean = y.mean(axis=0, dtype=np.float64)
    assert np.all(np.abs(mean - p) <= 5 * np.sqrt(p * (1 - p) / n))  # exact at p = 0 and 1


def test_uniform_below_255_is_uniform_on_0_to_254():
    rng = np.random.default_rng(5)
    u = uniform_below_255(rng, (1000, 255 * 4))   # 1000 * 4 expected draws of each value
    assert u.dtype == np.uint8 and u.shape == (1000, 1020) and u.max() == 254
    counts = np.bincount(u.ravel(), minlength=255)
    expected = u.size / 255
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected))
    # the raw bytes held about u.size / 256 = 3984 values of 255, all redrawn:
    # the same stream without rejection would give a different array
    raw = np.frombuffer(np.random.default_rng(5).bytes(u.size), dtype=np.uint8)
    assert np.sum(raw == 255) > 3000
    np.testing.assert_array_equal(u.ravel()[raw != 255], raw[raw != 255])


def test_dynamic_is_reproducible_and_fresh():
    x = np.tile(LEVELS, (8, 1))
    a = binarize(x, "dynamic", rng=np.random.default_rng(42))
    b = binarize(x, "dynamic", rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(42)
    first, second = binarize(x, "dynamic", rng=rng), binarize(x, "dynamic", rng=rng)
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)
    assert not np.array_equal(a, binarize(x, "dynamic", rng=np.random.default_rng(43)))


@given(x=arrays(np.uint8, array_shapes(min_dims=1, max_dims=3, max_side=6)))
def test_binary_modes_give_zeros_and_ones_of_the_input_shape(x):
    for mode in ("threshold", "dynamic"):
        y = binarize(x, mode, rng=np.random.default_rng(0))
        assert y.shape == x.shape and y.dtype == np.float32
        assert np.all((y == 0) | (y == 1))
        assert np.all(y[x == 0] == 0) and np.all(y[x == 255] == 1)


@pytest.mark.parametrize("mode", BINARIZE_MODES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_out_is_written_and_returned(mode, dtype):
    x = np.tile(LEVELS, (3, 1))
    out = np.full(x.shape, -1, dtype=dtype)
    y = binarize(x, mode, rng=np.random.default_rng(0), dtype=dtype, out=out)
    assert y is out
    np.testing.assert_array_equal(out, binarize(x, mode, rng=np.random.default_rng(0), dtype=dtype))


@pytest.mark.parametrize("mode", BINARIZE_MODES)
def test_float32_output_needs_no_float64_temporaries(mode):
    x = np.tile(LEVELS, (1000, 1))  # (1000, 256): float32 output 1 MB, a float64 copy 2 MB
    tracemalloc.start()
    y = binarize(x, mode, rng=np.random.default_rng(0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # output + at most two uint8-sized temporaries (dynamic: the random bytes and
    # the mask of bytes to redraw) + ufunc buffers; a float64 copy would be 2 MB
    assert peak <= y.nbytes + 2 * x.nbytes + 100_000


def test_errors_name_the_problem():
    x = LEVELS
    with pytest.raises(ValueError, match=r"unknown binarize mode 'bernoulli'; valid modes: "
                                         r"\('none', 'dynamic', 'threshold'\)"):
        binarize(x, "bernoulli")
    with pytest.raises(ValueError, match="expected uint8 pixels, got dtype float64"):
        binarize(x / 255.0, "threshold")
    with pytest.raises(ValueError, match="expected uint8 pixels, got dtype int64"):
        to_unit_interval(x.astype(np.int64))
    with pytest.raises(ValueError, match="'dynamic' needs rng=np.random.Generator, got None"):
        binarize(x, "dynamic")
    with pytest.raises(ValueError, match="'dynamic' needs rng=np.random.Generator"):
        binarize(x, "dynamic", rng=np.random.RandomState(0))
    with pytest.raises(ValueError, match="output dtype must be float32 or float64, got float16"):
        binarize(x, "none", dtype=np.float16)
    with pytest.raises(ValueError, match=r"out must be float32 \(256,\), got float64 \(256,\)"):
        binarize(x, "threshold", out=np.empty(256))
