"""`dagrad data download fashion_mnist` against a local HTTP server on 127.0.0.1 (no internet): the
publisher's four .gz files, each checked against its MD5 before anything is kept."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import threading

import pytest

from helpers.fashionfiles import write_set

from dagrad.cli import main
from dagrad.datasets import fashion, fashion_source
from dagrad.datasets.check import RECORD_NAME, check
from dagrad.datasets.download import download
from dagrad.utils.errors import DataError


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A tiny file set served on 127.0.0.1, with the MD5 table and counts made to fit it."""
    files = {p.name: p.read_bytes() for p in write_set(tmp_path / "published", 60, 20).iterdir()}
    monkeypatch.setattr(fashion_source, "MD5", {n: hashlib.md5(b).hexdigest() for n, b in files.items()})
    monkeypatch.setattr(fashion_source, "COUNTS", {"train": 60, "test": 20})
    monkeypatch.setattr(fashion_source, "PER_CLASS", {"train": 6, "test": 2})
    monkeypatch.setattr(fashion, "DEBIAN_DIR", tmp_path / "no-debian-copy")
    asked = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            name = self.path.lstrip("/")
            asked.append(name)
            if name not in files:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(files[name])))
            self.end_headers()
            self.wfile.write(files[name])

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", files, asked
    httpd.shutdown()
    httpd.server_close()


def test_download_fetches_verifies_and_records_the_publishers_files(tmp_path, served):
    url, files, asked = served
    folder = download("fashion_mnist", tmp_path / "data", progress=False, base_url=url)
    assert folder == (tmp_path / "data" / "fashion_mnist").resolve()
    assert sorted(asked) == sorted(files) and all((folder / n).read_bytes() == b for n, b in files.items())
    record = json.loads((folder / RECORD_NAME).read_text())
    assert record["verified"] == "md5" and record["counts"] == {"train": 60, "test": 20}
    assert {f["file"]: f["md5"] for f in record["files"]} == fashion_source.MD5
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["fashion_mnist"]  # no staging left behind
    report = check("rotated_fashion_mnist", tmp_path / "data")
    assert report.ok and "MD5 matches the publisher's for train-images-idx3-ubyte.gz" in report.format()
    assert download("fashion_mnist", tmp_path / "data", progress=False, base_url=url) == folder
    assert len(asked) == 4  # already there: nothing fetched again
    labels = folder / "t10k-labels-idx1-ubyte.gz"
    labels.write_bytes(gzip.compress(gzip.decompress(labels.read_bytes()), compresslevel=1, mtime=1))
    report = check("fashion_mnist", tmp_path / "data")  # same contents, recompressed: other MD5s
    assert not report.ok and "changed since `dagrad data download`" in report.format()
    assert "t10k-labels-idx1-ubyte.gz: MD5 differs from the publisher's table" in report.format()
    labels.write_bytes(labels.read_bytes()[:30])
    with pytest.raises(DataError, match="broken gzip stream"):  # a damaged file is never read as data
        check("fashion_mnist", tmp_path / "data")


def test_a_file_whose_md5_differs_keeps_nothing(tmp_path, served, monkeypatch):
    url, _, _ = served
    monkeypatch.setitem(fashion_source.MD5, "t10k-images-idx3-ubyte.gz", "0" * 32)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz: MD5 .* differs from the publisher's 0000"):
        download("fashion_mnist", tmp_path / "data", progress=False, base_url=url)
    assert list((tmp_path / "data").iterdir()) == []


def test_the_cli_downloads_through_the_mirror_and_the_benchmark_finds_the_files(tmp_path, served, monkeypatch,
                                                                                 capsys):
    url, _, _ = served
    monkeypatch.setenv("DAGRAD_MIRROR", url)
    assert main(["data", "download", "fashion_mnist", "--root", str(tmp_path / "d")]) == 0
    assert "fashion_mnist is ready in" in capsys.readouterr().out
    assert fashion.locate(tmp_path / "d") == (tmp_path / "d" / "fashion_mnist").resolve()
    assert main(["data", "check", "fashion_mnist", "--root", str(tmp_path / "d")]) == 0
    monkeypatch.setenv("DAGRAD_MIRROR", url + "missing/")
    assert main(["data", "download", "fashion_mnist", "--root", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("dagrad: error: download of ") and "HTTP 404" in err[-1]
    assert list((tmp_path / "e").iterdir()) == []


def test_the_default_source_is_the_publishers_repository_over_https():
    assert fashion_source.URL.startswith("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/")
    assert sorted(fashion_source.MD5) == sorted(f"{s}.gz" for pair in fashion.FILES.values() for s in pair)
