"""blas.py (NumPy's OpenBLAS thread count, read and set at run time) and
evaluate.in_order (the evaluation's pool of threads)."""

import threading

import numpy as np
import pytest

from numpyvae.util import blas
from numpyvae.evaluate import in_order

from conftest import ON_CI


def test_limited_blas_threads_sets_the_count_and_restores_it():
    before = blas.blas_threads()
    if before is None:
        if ON_CI:   # the PyPI wheels of NumPy on CI bring an OpenBLAS this module finds
            pytest.fail("blas.blas_threads() found no OpenBLAS in NumPy's wheel")
        pytest.skip("NumPy's BLAS here is not an OpenBLAS blas.py can find")
    assert isinstance(before, int) and before >= 1
    with blas.limited_blas_threads(1) as seen:
        assert seen == before
        assert blas.blas_threads() == 1
        a = np.random.default_rng(0).standard_normal((300, 300))
        np.testing.assert_allclose(a @ a.T, (a @ a.T).T, rtol=1e-12)   # products still run
    assert blas.blas_threads() == before


def test_the_count_is_restored_when_the_block_raises():
    before = blas.blas_threads()
    with pytest.raises(KeyError):
        with blas.limited_blas_threads(1):
            raise KeyError("inside")
    assert blas.blas_threads() == before


def test_without_a_known_blas_nothing_changes(monkeypatch):
    monkeypatch.setattr(blas, "_openblas", lambda: None)
    assert blas.blas_threads() is None
    with blas.limited_blas_threads(1) as seen:
        assert seen is None


def test_importing_changes_nothing():
    """blas.py only acts when called: a fresh interpreter importing numpyvae
    (and blas) runs OpenBLAS on as many threads as one importing NumPy alone."""
    import subprocess
    import sys
    everything = ("import numpyvae, numpyvae.run.fit, numpyvae.evaluate; from numpyvae.util import blas; "
                  "print(blas.blas_threads())")
    blas_alone = "from numpyvae.util import blas; print(blas.blas_threads())"
    got = [subprocess.run([sys.executable, "-c", c], capture_output=True, text=True, check=True)
           .stdout.strip() for c in (everything, blas_alone)]
    assert got[0] == got[1]


# ----------------------------------------------------------------- in_order --

@pytest.mark.parametrize("workers", [1, 2, 3])
def test_in_order_yields_in_the_order_of_the_jobs(workers):
    drawn = []

    def jobs():
        for i in range(20):
            drawn.append((i, threading.get_ident()))
            yield i, (i,)

    def slow_square(i):
        threading.Event().wait(0.002 * ((7 * i) % 5))   # finish out of order
        return i * i

    results = list(in_order(slow_square, jobs(), workers))
    assert results == [(i, i * i) for i in range(20)]
    # the jobs (e.g. random draws) are consumed in order, in the calling thread
    assert [i for i, _ in drawn] == list(range(20))
    assert {ident for _, ident in drawn} == {threading.get_ident()}


def test_in_order_uses_the_threads_it_is_given():
    seen = set()
    barrier = threading.Barrier(2, timeout=10)

    def meet(i):
        seen.add(threading.get_ident())
        barrier.wait()          # two jobs must run at the same time to pass
        return i

    assert [r for _, r in in_order(meet, ((i, (i,)) for i in range(4)), 2)] == [0, 1, 2, 3]
    assert len(seen) == 2 and threading.get_ident() not in seen


@pytest.mark.parametrize("error", [ValueError("piece 3"), KeyboardInterrupt("piece 3")])
@pytest.mark.parametrize("workers", [1, 2])
def test_in_order_passes_a_worker_error_on_and_stops_drawing(error, workers):
    drawn = []

    def jobs():
        for i in range(50):
            drawn.append(i)
            yield i, (i,)

    def fails_at_3(i):
        if i == 3:
            raise error
        return i

    with pytest.raises(type(error), match="piece 3"):
        list(in_order(fails_at_3, jobs(), workers))
    assert len(drawn) <= 4 + 2 * workers     # at most 2 * workers drawn ahead
