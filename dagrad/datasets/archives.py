"""Extract zip and tar archives without letting any member escape the target folder.

Every member is checked before anything is written: absolute paths, drive letters, `..` components,
symbolic links, hard links and device files make the whole archive refused with a DataError naming
the member. Only regular files and directories are written."""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from dagrad.errors import DataError


def _safe_name(archive: Path, name: str) -> PurePosixPath:
    """The member's path relative to the target, or a DataError if it could land outside it."""
    normal = name.replace("\\", "/")
    pure = PurePosixPath(normal)
    if normal.startswith("/") or (len(normal) > 1 and normal[1] == ":") or pure.is_absolute():
        raise DataError(f"{archive.name}: refusing member {name!r}: absolute path")
    if ".." in pure.parts:
        raise DataError(f"{archive.name}: refusing member {name!r}: '..' would leave the target folder")
    return PurePosixPath(*[p for p in pure.parts if p not in ("", ".")])


def extract(archive: Path, target: Path) -> list[str]:
    """Extract `archive` (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) into `target`; returns the
    top-level names it created."""
    target.mkdir(parents=True, exist_ok=True)
    if zipfile.is_zipfile(archive):
        return _extract_zip(archive, target)
    if tarfile.is_tarfile(archive):
        return _extract_tar(archive, target)
    raise DataError(f"{archive}: not a zip or tar archive (a failed download, or an HTML error page?)")


def _extract_zip(archive: Path, target: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        members = []
        for info in zf.infolist():
            rel = _safe_name(archive, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise DataError(f"{archive.name}: refusing member {info.filename!r}: symbolic link")
            members.append((info, rel))
        for info, rel in members:
            if not rel.parts:
                continue
            out = target.joinpath(*rel.parts)
            if info.is_dir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return sorted({rel.parts[0] for _, rel in members if rel.parts})


def _extract_tar(archive: Path, target: Path) -> list[str]:
    with tarfile.open(archive) as tf:
        members = []
        for member in tf.getmembers():
            rel = _safe_name(archive, member.name)
            if member.issym() or member.islnk():
                raise DataError(f"{archive.name}: refusing member {member.name!r}: "
                                f"{'symbolic' if member.issym() else 'hard'} link to {member.linkname!r}")
            if not (member.isfile() or member.isdir()):
                raise DataError(f"{archive.name}: refusing member {member.name!r}: not a file or directory")
            members.append((member, rel))
        for member, rel in members:
            if not rel.parts:
                continue
            out = target.joinpath(*rel.parts)
            if member.isdir():
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(member)
            if src is None:  # pragma: no cover - isfile() members always have data
                raise DataError(f"{archive.name}: cannot read member {member.name!r}")
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
    return sorted({rel.parts[0] for _, rel in members if rel.parts})
