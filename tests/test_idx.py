"""IDX reading and writing: round trips, the byte layout, and every malformed-file error."""

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from idx_writer import write_idx
from numpyvae.data.idx import IDXError, read_idx

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return tmp_path_factory.mktemp("idx")


@settings(max_examples=60, deadline=None)
@given(a=st.sampled_from(DTYPES).flatmap(
           lambda dt: arrays(dt, array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))),
       name=st.sampled_from(["a.idx", "a.idx.gz"]))
def test_round_trip_is_bit_exact(scratch, a, name):
    path = scratch / name
    write_idx(path, a)
    b = read_idx(path)
    assert b.dtype == a.dtype and b.shape == a.shape
    assert b.tobytes() == a.tobytes()  # bit-exact, NaN payloads and -0.0 included
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\0\0")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_dtype_and_rank(tmp_path, dtype, compress):
    for shape in [(7,), (3, 4), (2, 3, 4), (2, 1, 3, 2)]:
        a = (np.arange(np.prod(shape)) - 5).astype(dtype).reshape(shape)
        write_idx(tmp_path / "a", a, compress=compress)
        b = read_idx(tmp_path / "a")
        assert b.dtype == a.dtype and b.flags.writeable
        np.testing.assert_array_equal(b, a)


def test_layout_matches_hand_built_bytes(tmp_path):
    # independent reference: the header and data packed by hand with struct
    a = np.array([[1, -2, 3], [70000, 0, -1]], dtype=np.int32)
    expected = struct.pack(">BBBBII", 0, 0, 0x0C, 2, 2, 3) + struct.pack(">6i", *a.ravel())
    write_idx(tmp_path / "a.idx", a)
    assert (tmp_path / "a.idx").read_bytes() == expected
    (tmp_path / "b.idx").write_bytes(expected)
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), a)


def test_big_endian_input_and_native_output(tmp_path):
    a = np.array([1.5, -2.25], dtype=">f8")
    write_idx(tmp_path / "a.idx", a)
    b = read_idx(tmp_path / "a.idx")
    assert b.dtype == np.float64 and b.dtype.isnative
    np.testing.assert_array_equal(b, a)


def test_gzip_detected_by_magic_not_by_name(tmp_path):
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    write_idx(tmp_path / "gzipped.idx", a, compress=True)
    write_idx(tmp_path / "raw.idx.gz", a, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "gzipped.idx"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.idx.gz"), a)


def test_gzip_output_is_reproducible(tmp_path):
    a = np.arange(100, dtype=np.int16)
    write_idx(tmp_path / "a.gz", a)
    first = (tmp_path / "a.gz").read_bytes()
    write_idx(tmp_path / "a.gz", a)
    assert (tmp_path / "a.gz").read_bytes() == first


def test_write_rejects_unsupported_dtype(tmp_path):
    for a in [np.zeros(3, np.int64), np.zeros(3, bool), np.zeros(3, np.float16)]:
        with pytest.raises(ValueError, match=f"cannot store dtype {a.dtype}"):
            write_idx(tmp_path / "a.idx", a)


HEADER_U8_10 = bytes([0, 0, 0x08, 1]) + struct.pack(">I", 10)  # uint8, dims (10,)


@pytest.mark.parametrize("content, match", [
    (b"", r"empty file"),
    (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"x", r"wrong magic 01 00, expected 00 00"),
    (b"PK\x03\x04", r"wrong magic 50 4b"),
    (b"\0\0\x08", r"truncated header: 3 bytes"),
    (b"\0\0\x0A\x01" + struct.pack(">I", 1) + b"x", r"unknown IDX dtype code 0x0A"),
    (b"\0\0\x08\x03" + struct.pack(">I", 60000), r"truncated header: 3 dims need 16 header bytes, file has 8"),
    (HEADER_U8_10 + bytes(7), r"truncated: header dims \(10,\) of uint8 need 10 data bytes, file has 7"),
    (HEADER_U8_10 + bytes(12), r"size mismatch: header dims \(10,\) of uint8 need 10 data bytes, file has 12"),
    (b"\0\0\x0C\x01" + struct.pack(">I", 2) + bytes(7), r"dims \(2,\) of int32 need 8 data bytes, file has 7"),
])
@pytest.mark.parametrize("compress", [False, True])
def test_malformed_files_raise_idx_error(tmp_path, content, match, compress):
    path = tmp_path / "bad.idx"
    path.write_bytes(gzip.compress(content) if compress else content)
    with pytest.raises(IDXError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_corrupt_gzip_raises_idx_error(tmp_path):
    good = gzip.compress(HEADER_U8_10 + bytes(range(10)))
    corrupt = {
        "truncated.gz": good[: len(good) // 2],
        "bad_crc.gz": good[:-8] + bytes([good[-8] ^ 0xFF]) + good[-7:],
        "bad_header.gz": good[:2] + b"\x63" + good[3:],  # compression method 99
        "magic_only.gz": b"\x1f\x8b",
    }
    for name, content in corrupt.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(IDXError, match=f"{name}: corrupt gzip stream"):
            read_idx(tmp_path / name)
