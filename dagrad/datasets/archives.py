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
from typing import IO, Callable

from dagrad.utils.errors import DataError


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


Member = tuple[PurePosixPath, bool, Callable[[], IO[bytes]]]  # (path in target, is a directory, open)


def _check_tree(archive: Path, members: list[Member]) -> None:
    """No member lies under another member that is a file (`a` and `a/b`), and no path is both a file and
    a folder: such an archive cannot be extracted as it is listed."""
    files = {rel for rel, is_dir, _ in members if not is_dir and rel.parts}
    folders = {rel for rel, is_dir, _ in members if is_dir and rel.parts}
    for rel, _, _ in members:
        clash = next((p for p in rel.parents if p in files), None)
        if clash is not None:
            raise DataError(f"{archive.name}: refusing member {str(rel)!r}: it lies under {str(clash)!r}, which the "
                            "archive holds as a file")
    both = sorted(files & folders)
    if both:
        raise DataError(f"{archive.name}: refusing member {str(both[0])!r}: the archive holds it as a file and as a "
                        "folder")


def _write(members: list[Member], target: Path, archive: Path) -> list[str]:
    """Write checked members under `target`; returns the top-level names."""
    _check_tree(archive, members)
    for rel, is_dir, open_member in members:
        if not rel.parts:
            continue
        out = target.joinpath(*rel.parts)
        if is_dir:
            out.mkdir(parents=True, exist_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        with open_member() as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
    return sorted({rel.parts[0] for rel, _, _ in members if rel.parts})


def _extract_zip(archive: Path, target: Path) -> list[str]:
    with zipfile.ZipFile(archive) as zf:
        members: list[Member] = []
        for info in zf.infolist():
            rel = _safe_name(archive, info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise DataError(f"{archive.name}: refusing member {info.filename!r}: symbolic link")
            members.append((rel, info.is_dir(), lambda info=info: zf.open(info)))
        return _write(members, target, archive)


def _extract_tar(archive: Path, target: Path) -> list[str]:
    with tarfile.open(archive) as tf:
        members: list[Member] = []
        for member in tf.getmembers():
            rel = _safe_name(archive, member.name)
            if member.issym() or member.islnk():
                raise DataError(f"{archive.name}: refusing member {member.name!r}: "
                                f"{'symbolic' if member.issym() else 'hard'} link to {member.linkname!r}")
            if not (member.isfile() or member.isdir()):
                raise DataError(f"{archive.name}: refusing member {member.name!r}: not a file or directory")
            members.append((rel, member.isdir(), lambda member=member: tf.extractfile(member)))
        return _write(members, target, archive)
