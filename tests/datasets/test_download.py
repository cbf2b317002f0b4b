"""`dagrad data download` against a local HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from helpers import imagetree

from dagrad.datasets import download as dl
from dagrad.datasets.archives import extract
from dagrad.datasets.builtin import PACS_COUNTS
from dagrad.datasets.check import check
from dagrad.utils.errors import DataError


PACS_ENVS = ["art_painting", "cartoon", "photo", "sketch"]


class Server:
    """Serves `files` (name -> bytes); honours Range; can cut the first response of a file halfway."""

    def __init__(self, files: dict[str, bytes], cut_first: bool = False):
        self.files, self.cut_first, self.requests = files, cut_first, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                outer.requests.append((name, self.headers.get("Range")))
                if name not in outer.files:
                    self.send_error(404)
                    return
                data = outer.files[name]
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if outer.cut_first and len(outer.requests) == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path_factory):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DAGRAD_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.delenv("DAGRAD_MIRROR", raising=False)


def _pacs_zip(tmp_path: Path) -> bytes:
    """A PACS archive laid out as DomainBed's (top-level kfold/), 2 images per environment."""
    tree = imagetree.write_tree(tmp_path / "src" / "kfold", {e: {"dog": 1, "horse": 1} for e in PACS_ENVS})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(tree.rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "src").as_posix())
    return buffer.getvalue()


def _use_source(monkeypatch, source: dl.Source) -> None:
    """PACS's spec with another download source, for this test only."""
    real = dl.dataset_spec
    monkeypatch.setattr(dl, "dataset_spec", lambda name: dataclasses.replace(real(name), download=source))


def _small_pacs_source(monkeypatch, sha256=None) -> None:
    remote = dl.Remote("PACS.zip", "https://example.invalid/PACS.zip", {"kfold": "PACS"}, sha256=sha256, gdrive=True)
    _use_source(monkeypatch, dl.Source((remote,), "PACS", "test", {e: 2 for e in PACS_ENVS}))


def test_download_good_archive_lays_out_and_records(tmp_path, monkeypatch):
    data = _pacs_zip(tmp_path)
    _small_pacs_source(monkeypatch, sha256=hashlib.sha256(data).hexdigest())
    root = tmp_path / "data"
    with Server({"PACS.zip": data}) as server:
        monkeypatch.setenv("DAGRAD_MIRROR", server.url)
        target = dl.download("pacs", root, progress=False)
    assert target == root / "PACS" and sorted(p.name for p in target.iterdir() if p.is_dir()) == PACS_ENVS
    record = json.loads((target / ".dagrad_download.json").read_text())
    assert record["archives"][0]["sha256"] == hashlib.sha256(data).hexdigest()
    assert record["counts"] == {e: 2 for e in PACS_ENVS}
    assert not (root / "PACS.zip").exists() and not list(root.glob(".dagrad-staging-*"))
    assert dl.download("pacs", root, progress=False) == target  # already there: nothing fetched
    (target / "photo/dog/img0.png").unlink()
    report = check("pacs", root)
    assert any("1 images now, 2 when downloaded" in p for p in report.problems)


def test_bad_checksum_is_refused_and_removed(tmp_path, monkeypatch):
    data = _pacs_zip(tmp_path)
    _small_pacs_source(monkeypatch, sha256="0" * 64)
    with Server({"PACS.zip": data}) as server:
        with pytest.raises(DataError, match="SHA-256 .* differs from the published 0000"):
            dl.download("pacs", tmp_path / "data", progress=False, base_url=server.url)
    assert not (tmp_path / "data/PACS.zip").exists() and not (tmp_path / "data/PACS").exists()


def test_count_mismatch_is_refused(tmp_path, monkeypatch):
    data = _pacs_zip(tmp_path)
    remote = dl.Remote("PACS.zip", "https://example.invalid/PACS.zip", {"kfold": "PACS"})
    _use_source(monkeypatch, dl.Source((remote,), "PACS", "test", PACS_COUNTS))
    with Server({"PACS.zip": data}) as server:
        with pytest.raises(DataError, match="art_painting: 2 found, 2048 expected"):
            dl.download("pacs", tmp_path / "data", progress=False, base_url=server.url)
    assert not (tmp_path / "data/PACS").exists()


def test_interrupted_download_resumes_with_range(tmp_path, monkeypatch):
    data = _pacs_zip(tmp_path)
    _small_pacs_source(monkeypatch)
    monkeypatch.setattr(dl, "RETRY_BACKOFF", 0.01)
    with Server({"PACS.zip": data}, cut_first=True) as server:
        target = dl.download("pacs", tmp_path / "data", progress=False, base_url=server.url)
    assert server.requests[0] == ("PACS.zip", None)
    offset = int(server.requests[1][1].split("=")[1].rstrip("-"))
    assert 0 < offset < len(data)
    record = json.loads((target / ".dagrad_download.json").read_text())
    assert record["archives"][0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_google_drive_source_without_gdown_explains(tmp_path, monkeypatch):
    _small_pacs_source(monkeypatch)
    monkeypatch.setitem(__import__("sys").modules, "gdown", None)
    with pytest.raises(DataError, match="needs the gdown package"):
        dl.download("pacs", tmp_path / "data", progress=False)


def test_no_source_for_terra_incognita(tmp_path):
    with pytest.raises(DataError, match="no public source"):
        dl.download("terra_incognita", tmp_path)


def _zip_with(name: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("ok/file.txt", "fine")
        zf.writestr(name, "evil")
    return buffer.getvalue()


def test_zip_member_escaping_target_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip_with("../evil.txt"))
    with pytest.raises(DataError, match="refusing member '../evil.txt'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out/ok").exists()
    archive.write_bytes(_zip_with("/abs/evil.txt"))
    with pytest.raises(DataError, match="absolute path"):
        extract(archive, tmp_path / "out")


def _tar_with(member: tarfile.TarInfo, payload: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        ok = tarfile.TarInfo("ok/file.txt")
        ok.size = 4
        tf.addfile(ok, io.BytesIO(b"fine"))
        member.size = len(payload) if member.isfile() else 0
        tf.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return buffer.getvalue()


def test_tar_absolute_path_and_links_are_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    archive.write_bytes(_tar_with(tarfile.TarInfo("/etc/evil"), b"x"))
    with pytest.raises(DataError, match="absolute path"):
        extract(archive, tmp_path / "out")
    link = tarfile.TarInfo("ok/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive.write_bytes(_tar_with(link))
    with pytest.raises(DataError, match="symbolic link"):
        extract(archive, tmp_path / "out")
    hard = tarfile.TarInfo("ok/hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "../../outside"
    archive.write_bytes(_tar_with(hard))
    with pytest.raises(DataError, match="hard link"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "out/ok").exists()
    archive.write_bytes(_tar_with(tarfile.TarInfo("ok/other.txt"), b"data"))
    assert extract(archive, tmp_path / "out") == ["ok"] and (tmp_path / "out/ok/other.txt").read_bytes() == b"data"


def test_domain_net_is_fetched_over_https():
    source = dl.dataset_spec("domain_net").download
    assert [r.url.split("://")[0] for r in source.remotes] == ["https"] * 6
    assert dl.DOMAINNET_DUPLICATES.startswith("https://")


def test_a_download_nothing_published_can_verify_says_so(tmp_path, monkeypatch):
    """VLCS-like: no checksum, no published counts. The download warns, records `verified: none`, and
    `data check` says integrity cannot be verified (only later changes are detected)."""
    envs = ["Caltech101", "LabelMe", "SUN09", "VOC2007"]
    classes = {c: 1 for c in ("bird", "car", "chair", "dog", "person")}
    tree = imagetree.write_tree(tmp_path / "src" / "VLCS", {e: dict(classes) for e in envs})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(tree.rglob("*")):
            zf.write(path, path.relative_to(tmp_path / "src").as_posix())
    remote = dl.Remote("VLCS.zip", "https://example.invalid/VLCS.zip", {"VLCS": "VLCS"})
    real = dl.dataset_spec
    monkeypatch.setattr(dl, "dataset_spec", lambda name: dataclasses.replace(
        real(name), download=dl.Source((remote,), "VLCS", "test")))
    with Server({"VLCS.zip": buffer.getvalue()}) as server:
        with pytest.warns(UserWarning, match="vlcs: its source publishes no checksum and no image counts, so this "
                                             "download could not be verified"):
            target = dl.download("vlcs", tmp_path / "data", progress=False, base_url=server.url)
    assert json.loads((target / ".dagrad_download.json").read_text())["verified"] == "none"
    report = check("vlcs", tmp_path / "data")
    assert report.ok, report.format()
    assert ("integrity cannot be verified for Caltech101, LabelMe, SUN09, VOC2007: no published image count, and "
            "its source publishes no checksum; only changes since `dagrad data download` are detected (the counts "
            "and archive hashes it recorded)") in report.notes
