"""The IDX file format (LeCun's MNIST format, also Fashion-MNIST's), read strictly, gzipped or not.

An IDX file is: two zero bytes, a type code (0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32,
0x0D float32, 0x0E float64), the number of dimensions, one big-endian uint32 per dimension, then the
values, big-endian, row-major. Whether a file is gzipped is read from its first two bytes, not its name.
A malformed header, a truncated file, trailing bytes or a broken gzip stream is a DataError naming the
file and what was wrong; nothing in the file is ever executed (the values go through `np.frombuffer`)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from dagrad.utils.errors import DataError

#: IDX type code -> numpy dtype (big-endian, as the format stores values)
IDX_TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
             0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path: str | Path) -> bytes:
    """The file's contents, decompressed when it is gzipped."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: broken gzip stream ({exc}); the file is damaged or truncated, fetch it again") from None


def parse_idx(data: bytes, name: str = "IDX data") -> np.ndarray:
    """The array an IDX byte string holds (native byte order), or a DataError saying what is wrong."""
    if len(data) < 4:
        raise DataError(f"{name}: not an IDX file ({len(data)} bytes; an IDX header has at least 4)")
    if data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (its first two bytes are {data[:2].hex()}, IDX files start 0000)")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02x} (allowed: "
                        f"{', '.join(f'0x{c:02x}' for c in IDX_TYPES)})")
    if ndim == 0:
        raise DataError(f"{name}: malformed IDX header (0 dimensions)")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DataError(f"{name}: malformed IDX header ({ndim} dimensions declared, the file ends inside them)")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    have = len(data) - start
    if have < expected:
        raise DataError(f"{name}: truncated ({have:,} bytes of values, the header {shape} needs {expected:,})")
    if have > expected:
        raise DataError(f"{name}: {have - expected:,} bytes after the values the header {shape} declares; "
                        f"the header's count is wrong or the file is damaged")
    values = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=start)
    return values.astype(dtype.newbyteorder("=")).reshape(shape)  # a writable copy, in native byte order


def read_idx(path: str | Path) -> np.ndarray:
    """The array in IDX file `path` (gzipped or not)."""
    return parse_idx(read_bytes(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """`array` encoded as an IDX file (the inverse of `parse_idx`; used to write test files)."""
    array = np.asarray(array)
    code = next((c for c, t in IDX_TYPES.items() if t.kind == array.dtype.kind and t.itemsize == array.dtype.itemsize),
                None)
    if code is None or array.ndim == 0 or array.ndim > 255:
        raise DataError(f"IDX cannot hold a {array.ndim}-dimensional {array.dtype} array")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.astype(IDX_TYPES[code], copy=False).tobytes()
