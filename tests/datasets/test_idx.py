"""The IDX reader on tiny files the tests write: every type, gzipped or not, and every way a file can be bad."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from helpers.fashionfiles import write

from dagrad.cli import main
from dagrad.datasets.idx import idx_bytes, parse_idx, read_idx
from dagrad.utils.errors import DataError


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", ">i4", ">f4", ">f8"])
@pytest.mark.parametrize("gz", [False, True])
def test_every_idx_type_reads_back_exactly(tmp_path, dtype, gz):
    array = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(np.dtype(dtype).newbyteorder("="))
    if dtype == "u1":
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = write(tmp_path / "a-idx3", idx_bytes(array), gz)
    got = read_idx(path)
    assert got.shape == (2, 3, 4) and got.dtype == array.dtype and np.array_equal(got, array)


def test_the_header_is_big_endian_as_the_format_says():
    data = bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 8, 9])  # one dimension of 3 unsigned bytes
    assert parse_idx(data).tolist() == [7, 8, 9]
    assert idx_bytes(np.array([7, 8, 9], dtype=np.uint8)) == data
    shorts = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    assert parse_idx(shorts).tolist() == [258, -2]


@pytest.mark.parametrize("data, words", [
    (b"\x00\x00\x08", "an IDX header has at least 4"),
    (b"PK\x03\x04rest", "first two bytes are 504b"),
    (bytes([0, 0, 0x07, 1, 0, 0, 0, 1, 5]), "unknown IDX type code 0x07"),
    (bytes([0, 0, 0x08, 0]), "0 dimensions"),
    (bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0]), "the file ends inside them"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 5, 1, 2, 3]), "truncated (3 bytes of values, the header (5,) needs 5)"),
    (bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 1, 2, 3]), "1 bytes after the values the header (2,) declares"),
])
def test_a_bad_file_is_one_data_error_saying_what_is_wrong(tmp_path, data, words):
    for gz in (False, True):
        path = write(tmp_path / f"bad{gz}", data, gz)
        with pytest.raises(DataError) as caught:
            read_idx(path)
        assert words in str(caught.value) and str(path) in str(caught.value)
        assert "\n" not in str(caught.value)


def test_a_truncated_gzip_stream_is_a_data_error(tmp_path):
    whole = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)))
    path = tmp_path / "cut.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match="broken gzip stream"):
        read_idx(path)


def _bad_set(folder, case):
    """A file set under folder/fashion_mnist with one bad file."""
    from helpers.fashionfiles import write_set

    target = write_set(folder / "fashion_mnist", 30, 10)
    labels = target / "t10k-labels-idx1-ubyte.gz"
    if case == "header":
        write(labels.with_suffix(""), b"\x01\x02\x08\x01\x00\x00\x00\x0a" + bytes(10))
    elif case == "truncated":
        labels.write_bytes(gzip.compress(idx_bytes(np.zeros(10, np.uint8))[:-3]))
    elif case == "count":
        labels.write_bytes(gzip.compress(idx_bytes(np.zeros(9, np.uint8))))
    return folder


@pytest.mark.parametrize("case, words, command", [
    ("header", "not an IDX file", "check"), ("truncated", "truncated", "check"),
    ("count", "test: 10 images but 9 labels", "check"), ("count", "test: 10 images but 9 labels", "train"),
    ("truncated", "truncated", "train")])
def test_the_cli_gives_one_line_and_exit_2_for_a_bad_file(tmp_path, capsys, case, words, command):
    root = _bad_set(tmp_path, case)
    argv = ["data", "check", "fashion_mnist", "--root", str(root)] if command == "check" else \
        ["--threads", "1", "train", "-c", "datasets/fashion_mnist", f"data.root={root}", "epochs=1",
         "steps_per_epoch=1", "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("dagrad: warning")]
    assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
    assert not (tmp_path / "run").exists()
