"""The IDX file format: n-dimensional arrays as MNIST and its look-alikes ship.

An IDX file is a header followed by the array's elements in C (row-major)
order.  Every multi-byte number in it is big-endian:

    offset    size     field
    0         2        magic: 00 00
    2         1        dtype code: 0x08 uint8, 0x09 int8, 0x0B int16,
                                   0x0C int32, 0x0D float32, 0x0E float64
    3         1        ndim, the number of dimensions
    4         4*ndim   dims[0], ..., dims[ndim-1], each a uint32
    4+4*ndim  nbytes   the prod(dims) elements, nbytes = prod(dims) * itemsize

MNIST's training images, for example, start with 00 00 08 03 | 00 00 ea 60 |
00 00 00 1c | 00 00 00 1c: uint8, 3-D, dims (60000, 28, 28); the labels
with 00 00 08 01 | 00 00 ea 60: uint8, 1-D, (60000,).

The files are usually gzipped.  ``read_idx`` recognises gzip by its magic
bytes 1f 8b, whatever the file is called.  (The tests write IDX files with
tests/idx_writer.py.)
"""

import gzip
import math
import zlib

import numpy as np

# IDX dtype code -> numpy type (kind and size; the byte order is always big-endian)
_TYPES = {0x08: "u1", 0x09: "i1", 0x0B: "i2", 0x0C: "i4", 0x0D: "f4", 0x0E: "f8"}
_CODES = {t: code for code, t in _TYPES.items()}
_KNOWN = ", ".join(f"0x{code:02X} {np.dtype(t)}" for code, t in _TYPES.items())
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """A file is not a well-formed IDX file; the message names the file and the problem."""


def read_idx(path):
    """Read an IDX file, gzipped or raw, into a new native-endian array.

    Returns a writable array of the header's dtype and shape
    (dims[0], ..., dims[ndim-1]).  Raises IDXError, naming the file, for an
    empty file, a wrong magic, an unknown dtype code, a data size that does
    not match the header's dims, or a corrupt gzip stream.
    """
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise IDXError(f"{path}: corrupt gzip stream ({e})") from e
    if not raw:
        raise IDXError(f"{path}: empty file, expected an IDX header")
    if len(raw) >= 2 and raw[:2] != b"\0\0":
        raise IDXError(f"{path}: not an IDX file: wrong magic {raw[:2].hex(' ')}, "
                       "expected 00 00")
    if len(raw) < 4:
        raise IDXError(f"{path}: truncated header: {len(raw)} bytes, need at least 4")
    code, ndim = raw[2], raw[3]
    if code not in _TYPES:
        raise IDXError(f"{path}: unknown IDX dtype code 0x{code:02X}; known: {_KNOWN}")
    start = 4 + 4 * ndim
    if len(raw) < start:
        raise IDXError(f"{path}: truncated header: {ndim} dims need {start} "
                       f"header bytes, file has {len(raw)}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(">" + _TYPES[code])
    count = math.prod(shape)
    nbytes, have = count * dtype.itemsize, len(raw) - start
    if have != nbytes:
        problem = "truncated" if have < nbytes else "size mismatch"
        raise IDXError(f"{path}: {problem}: header dims {shape} of {dtype.name} need "
                       f"{nbytes} data bytes, file has {have}")
    data = np.frombuffer(raw, dtype=dtype, count=count, offset=start).reshape(shape)
    return data.astype(dtype.newbyteorder("="))
