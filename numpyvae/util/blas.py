"""How many threads NumPy's BLAS runs, read and changed while a program runs.

NumPy's matrix products (``a @ b``) run in the BLAS library NumPy was built
with; the wheels on PyPI bring their own OpenBLAS, which splits every large
product over as many threads as the machine has cores.  That is what a
training step wants: its products are the bulk of its work and nothing else
could use the second core.  The importance-weighted evaluation wants the
opposite: its chunks are independent, so two Python threads can each run a
whole chunk (product *and* elementwise work, which NumPy runs on one core)
on a core of their own, each with a one-thread BLAS.  Two threads each
asking OpenBLAS for two threads would put four on two cores, which is
slower than one thread (docs/benchmarks.md).

The environment variable ``OPENBLAS_NUM_THREADS`` only counts when NumPy
loads OpenBLAS, so a program that wants both settings changes the number at
run time, through OpenBLAS's own functions (found with ctypes in the
library NumPy loaded; threadpoolctl does the same for many libraries, and
is not a dependency here)::

    with limited_blas_threads(1) as before:    # before: the count it had, or None
        ...                                    # products here run on one thread

Where the library is not a known OpenBLAS (NumPy built against Accelerate,
MKL, a system BLAS), ``blas_threads()`` is None and ``limited_blas_threads``
changes nothing and yields None: callers then stay on one Python thread.
The count is process-wide while the block runs (this build of OpenBLAS
has no per-thread count), so nothing else in the process should run
products meanwhile.  Importing this module changes nothing.
"""

import contextlib
import ctypes
import functools
from pathlib import Path

import numpy as np

# (get, set) function names, newest OpenBLAS wheels first: scipy-openblas
# prefixes its symbols and, for 64-bit integers, suffixes them with 64_
_SYMBOLS = (
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


@functools.cache
def _openblas():
    """(get, set) ctypes functions of the OpenBLAS NumPy loaded, or None."""
    numpy_dir = Path(np.__file__).parent
    # where NumPy's wheels keep it: numpy.libs (Linux, Windows), numpy/.dylibs (macOS)
    for folder in (numpy_dir.parent / "numpy.libs", numpy_dir / ".dylibs"):
        for path in sorted(folder.glob("*openblas*")):
            try:
                library = ctypes.CDLL(str(path))
            except OSError:
                continue
            for get_name, set_name in _SYMBOLS:
                get, set_ = getattr(library, get_name, None), getattr(library, set_name, None)
                if get is not None and set_ is not None:
                    get.restype, get.argtypes = ctypes.c_int, []
                    set_.restype, set_.argtypes = None, [ctypes.c_int]
                    return get, set_
    return None


def blas_threads():
    """The number of threads NumPy's OpenBLAS runs a product on now, or None
    if NumPy's BLAS is not an OpenBLAS this module can find."""
    functions = _openblas()
    return None if functions is None else int(functions[0]())


@contextlib.contextmanager
def limited_blas_threads(n):
    """Run the block with NumPy's OpenBLAS on ``n`` threads, then restore the
    count it had.  Yields that earlier count, or None (and changes nothing)
    if the BLAS cannot be controlled."""
    functions = _openblas()
    if functions is None:
        yield None
        return
    get, set_ = functions
    before = int(get())
    set_(n)
    try:
        yield before
    finally:
        set_(before)
