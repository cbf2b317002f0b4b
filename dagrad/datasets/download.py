"""`dagrad data download NAME --root DIR`: fetch a dataset from the public source the anchors use,
resumably, verify it, and lay it out the way dagrad reads it.

- Sources: the URLs of DomainBed's domainbed/scripts/download.py (PACS, Office-Home, VLCS, DomainNet)
  and of Dassl's dataset classes (pacs_dassl, office_home_dg). Several are Google Drive files: those
  need the `gdown` package (Drive answers large files with a confirmation page); without it the error
  says where to put a manually downloaded archive, which is then used as is.
- DAGRAD_MIRROR (or `base_url`) replaces every source by `<mirror>/<archive file name>`.
- Downloads go to `ROOT/<archive>.part` and resume with HTTP Range after an interruption.
- Verification: against a SHA-256 where the source publishes one (none of them does today, and dagrad
  never invents one), else against the published image counts after extraction; where neither exists
  (DomainNet) a warning says the download could not be verified. The archive's SHA-256, the counts and
  how the copy was verified are recorded in `<dataset dir>/.dagrad_download.json` for `dagrad data check`.
- https wherever the source serves it (DomainNet's host does, though DomainBed's script uses http).
- Extraction refuses members that would leave the target folder (see archives.py), happens in a
  staging folder, and only a verified result is moved into place.
Exit semantics for the CLI: returns the dataset directory (exit 0); any failure is a DataError (exit 2)."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

from dagrad.utils.atomic import write_text_atomic
from dagrad.datasets.archives import extract
from dagrad.datasets.check import RECORD_NAME
from dagrad.datasets.index import index_tree
from dagrad.datasets.specs import Remote, Source, dataset_spec
from dagrad.utils.errors import DataError
from dagrad.utils.digest import sha256_of

#: DomainBed's list of DomainNet duplicates (misc/domain_net_duplicates.txt in its repository)
DOMAINNET_DUPLICATES = ("https://raw.githubusercontent.com/facebookresearch/DomainBed/main/"
                        "domainbed/misc/domain_net_duplicates.txt")
RETRY_BACKOFF = 1.0  # seconds before the first retry; doubled each time


def download(name: str, root: str | Path, progress: bool = True, base_url: Optional[str] = None,
             keep_archives: bool = False) -> Path:
    """Fetch, verify, extract and lay out dataset `name` under `root`; returns its directory."""
    entry = dataset_spec(name)
    if entry.downloader is not None:
        return entry.fetch(name, root, progress, base_url)
    source = entry.download
    if source is None:
        raise DataError(f"{name}: dagrad has no public source to download it from ({entry.notes or 'none known'}); "
                        f"place it under {root} in the layout the README describes and run `dagrad data check`")
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    target = root / entry.directory
    if (target / RECORD_NAME).is_file():
        return target
    if target.exists():
        raise DataError(f"{target} already exists but was not downloaded by dagrad; check it with "
                        f"`dagrad data check {name} --root {root}` or move it away and download again")
    base = base_url or os.environ.get("DAGRAD_MIRROR") or None
    staging = Path(tempfile.mkdtemp(prefix=f".dagrad-staging-{name}-", dir=root))
    try:
        archives, counts = _install(name, entry.directory, source, root, staging, base, progress)
    except BaseException as exc:
        if not getattr(exc, "keep_staging", False):
            shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)
    if not keep_archives:
        for item in archives:
            Path(item["path"]).unlink(missing_ok=True)
    verified = "sha256" if all(r.sha256 for r in source.remotes) else "published counts" if source.expected \
        else "none"
    if verified == "none":
        warnings.warn(f"{name}: its source publishes no checksum and no image counts, so this download could not be "
                      f"verified; `dagrad data check` will detect later changes against the counts recorded now")
    record = {"dataset": name, "origin": source.origin, "archives": archives, "counts": counts,
              "verified": verified, "downloaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_text_atomic(target / RECORD_NAME, json.dumps(record, indent=2) + "\n")
    return target


def _install(name: str, target: str, source: Source, root: Path, staging: Path, base: Optional[str],
             progress: bool) -> tuple[list, dict]:
    """Fetch and extract every archive into `staging`, verify, then move the result under `root`."""
    archives = []
    for remote in source.remotes:
        path = _obtain(remote, root, base, progress)
        digest = sha256_of(path)
        if remote.sha256 and digest != remote.sha256:
            path.unlink()
            raise DataError(f"{remote.filename}: SHA-256 {digest} differs from the published {remote.sha256}; "
                            f"the file was removed, run the command again to fetch it anew")
        raw = staging / "raw" / remote.filename
        extract(path, raw)
        for src, dst in remote.moves.items():
            if not (raw / src).exists():
                raise DataError(f"{remote.filename}: expected a top-level folder {src!r} in the archive, "
                                f"found {sorted(os.listdir(raw))}")
            (staging / "final" / dst).parent.mkdir(parents=True, exist_ok=True)
            os.replace(raw / src, staging / "final" / dst)
        archives.append({"file": remote.filename, "url": _url(remote, base), "sha256": digest,
                         "bytes": path.stat().st_size, "path": str(path)})
    final = staging / "final"
    if source.remove_duplicates:
        _remove_duplicates(final / target, base, progress)
    counts = _verify_counts(name, source, final)
    for top in os.listdir(final):
        os.replace(final / top, root / top)
    return archives, counts


def _url(remote: Remote, base: Optional[str]) -> str:
    return f"{base.rstrip('/')}/{remote.filename}" if base else remote.url


def _obtain(remote: Remote, root: Path, base: Optional[str], progress: bool) -> Path:
    """The archive at ROOT/<filename>: already there (e.g. put there by hand), or fetched now."""
    path = root / remote.filename
    if path.is_file():
        return path
    if remote.gdrive and not base:
        try:
            import gdown
        except ImportError:
            raise DataError(f"{remote.filename} is a Google Drive file ({remote.url}), which needs the gdown "
                            f"package: `pip install gdown`, or download it in a browser to {path} and run the "
                            f"command again (or set DAGRAD_MIRROR to a mirror that serves {remote.filename})") from None
        part = path.with_name(path.name + ".part")
        if gdown.download(remote.url, str(part), quiet=not progress, resume=True) is None:
            raise DataError(f"gdown could not fetch {remote.url}; download it by hand to {path}")
        os.replace(part, path)
        return path
    return fetch(_url(remote, base), path, progress)


def fetch(url: str, dest: Path, progress: bool = True, retries: int = 5, backoff: Optional[float] = None,
          timeout: float = 60.0) -> Path:
    """Download `url` to `dest` through `dest.part`, resuming with an HTTP Range request after a cut."""
    part = dest.with_name(dest.name + ".part")
    last: Exception | None = None
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.exists() else 0
        headers = {"User-Agent": "dagrad", **({"Range": f"bytes={have}-"} if have else {})}
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
                resumed = have > 0 and resp.status == 206
                total = _total(resp, have if resumed else 0)
                with open(part, "ab" if resumed else "wb") as f:
                    _copy(resp, f, (have if resumed else 0), total, progress, dest.name)
            size = part.stat().st_size
            if total is not None and size != total:
                raise ConnectionError(f"got {size} of {total} bytes")
            os.replace(part, dest)
            return dest
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and have and _total_from_range(exc.headers.get("Content-Range")) == have:
                os.replace(part, dest)
                return dest
            raise DataError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError) as exc:
            last = exc
            if attempt < retries:
                time.sleep((RETRY_BACKOFF if backoff is None else backoff) * 2**attempt)
    raise DataError(f"download of {url} failed after {retries + 1} attempts ({last}); "
                    f"run the command again to resume from {part}")


def _total_from_range(value: Optional[str]) -> Optional[int]:
    if value and "/" in value and value.rsplit("/", 1)[1].strip().isdigit():
        return int(value.rsplit("/", 1)[1])
    return None


def _total(resp, offset: int) -> Optional[int]:
    from_range = _total_from_range(resp.headers.get("Content-Range"))
    if from_range is not None:
        return from_range
    length = resp.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _copy(resp, f, done: int, total: Optional[int], progress: bool, label: str) -> None:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, desc=label, leave=False)
    try:
        while chunk := resp.read(1 << 20):
            f.write(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        f.flush()
        if bar is not None:
            bar.close()


def _remove_duplicates(directory: Path, base: Optional[str], progress: bool) -> None:
    """Delete the files DomainBed's duplicates list names (as its download script does) and keep the list."""
    listed = fetch(f"{base.rstrip('/')}/domain_net_duplicates.txt" if base else DOMAINNET_DUPLICATES,
                   directory / "domain_net_duplicates.txt", progress)
    for line in listed.read_text().splitlines():
        rel = line.strip().strip("/")
        if rel and ".." not in Path(rel).parts:
            (directory / rel).unlink(missing_ok=True)


def _verify_counts(name: str, source: Source, final: Path) -> dict[str, int]:
    """Images per environment after extraction, checked against the published counts where known."""
    env_root = final / source.env_root
    if not env_root.is_dir():
        raise DataError(f"after extraction {source.env_root} is missing; the archive does not have the expected layout")
    tree = index_tree(env_root, None, use_cache=False)
    counts = {env: tree.count(env) for env in tree.environments}
    wrong = {e: (counts.get(e, 0), n) for e, n in source.expected.items() if counts.get(e, 0) != n}
    if wrong:
        detail = ", ".join(f"{e}: {got} found, {want} expected" for e, (got, want) in wrong.items())
        error = DataError(f"{name}: the extracted images do not match the published counts ({detail}); "
                          f"left in {final} for inspection")
        error.keep_staging = True  # type: ignore[attr-defined]
        raise error
    if not counts or not all(counts.values()):
        raise DataError(f"{name}: an environment is empty after extraction ({counts})")
    return counts
