"""write_idx: the tests' IDX writer, for MNIST-like files made on the spot
(the format: numpyvae/data/idx.py, whose read_idx reads them)."""

import gzip

import numpy as np

from numpyvae.data.idx import _CODES, _KNOWN


def write_idx(path, array, compress=None):
    """Write array (any shape, a dtype listed in the module docstring) as an IDX file.

    compress=None gzips iff path ends with ".gz"; True/False force it.  The
    gzip header carries no timestamp, so rewriting a file with an equal array
    reproduces it byte for byte.
    """
    array = np.asarray(array)
    code = _CODES.get(array.dtype.str[1:])
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}; it stores {_KNOWN}")
    if array.ndim > 255 or any(d >= 2**32 for d in array.shape):
        raise ValueError(f"IDX stores at most 255 dims, each < 2**32; got shape {array.shape}")
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    data = array.astype(array.dtype.newbyteorder(">"), copy=False).tobytes()
    if compress is None:
        compress = str(path).endswith(".gz")
    with (gzip.GzipFile(path, "wb", mtime=0) if compress else open(path, "wb")) as f:
        f.write(header)
        f.write(data)
