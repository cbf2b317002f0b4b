"""A compact file index of a `<root>/<environment>/<class>/...` tree, built from directory listings
(os.scandir: no per-image open or stat) and cached on disk.

DomainNet has ~586k images; keeping a Python string per path would cost tens of megabytes and a
per-file stat would take minutes on a cold network disk. Here the file names of a tree are one UTF-8
blob with an offsets array, grouped by directory, so memory is about the bytes of the names. The cache
(an .npz under $DAGRAD_CACHE_DIR or ~/.cache/dagrad/index) is keyed by the tree's absolute path and is
valid while every indexed directory keeps its mtime: adding, removing or renaming a file changes its
directory's mtime, a new class or environment changes its parent's. A directory modified within
RACY_SECONDS before the scan began may have changed again in the same clock tick, so such a cache is
not trusted (git's "racy clean" rule); the next start rescans once and then caches for good."""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from dagrad.utils.atomic import write_atomic
from dagrad.utils.errors import StorageError

#: the extensions torchvision's ImageFolder (and so DomainBed) accepts, compared case-insensitively
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CACHE_VERSION = 1
RACY_SECONDS = 2.0


@dataclass
class FileIndex:
    """Files under `base`: file k is `base/dirs[dir_of[k]]/<name k>`, names stored as one UTF-8 blob."""

    base: str
    dirs: list[str]
    dir_of: np.ndarray  # int32, one per file
    blob: bytes
    offsets: np.ndarray  # int64, len(files) + 1

    def __len__(self) -> int:
        return len(self.dir_of)

    def name(self, k: int) -> str:
        return self.blob[self.offsets[k]:self.offsets[k + 1]].decode("utf-8")

    def relpath(self, k: int) -> str:
        d = self.dirs[self.dir_of[k]]
        return f"{d}/{self.name(k)}" if d else self.name(k)

    def path(self, k: int) -> str:
        return os.path.join(self.base, self.relpath(k))

    def relpaths(self) -> Iterable[str]:
        for k in range(len(self)):
            yield self.relpath(k)

    @classmethod
    def from_pairs(cls, base: str, pairs: Iterable[tuple[str, str]]) -> "FileIndex":
        """From (directory relative to base, file name) pairs, in the given order."""
        dirs: list[str] = []
        dir_ids: dict[str, int] = {}
        dir_of: list[int] = []
        chunks: list[bytes] = []
        for d, name in pairs:
            if d not in dir_ids:
                dir_ids[d] = len(dirs)
                dirs.append(d)
            dir_of.append(dir_ids[d])
            chunks.append(name.encode("utf-8"))
        lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
        offsets = np.zeros(len(chunks) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(base, dirs, np.asarray(dir_of, dtype=np.int32), b"".join(chunks), offsets)

    def select(self, keep: np.ndarray) -> "FileIndex":
        """The files at the given positions (a boolean mask or sorted indices), same directories."""
        idx = np.flatnonzero(keep) if keep.dtype == bool else np.asarray(keep)
        return FileIndex.from_pairs(self.base, ((self.dirs[self.dir_of[k]], self.name(k)) for k in idx))


def is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _scan_dir(path: str, rel: str, out: list) -> None:
    """Record (rel, mtime_ns, sorted image names) for `path` and, recursively, its subdirectories."""
    files, subdirs = [], []
    with os.scandir(path) as it:
        for entry in it:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():  # follows symlinks, as ImageFolder's os.walk(followlinks=True)
                subdirs.append(entry.name)
            elif is_image(entry.name) and entry.is_file():
                files.append(entry.name)
    out.append((rel, os.stat(path).st_mtime_ns, sorted(files)))
    for sub in sorted(subdirs):
        _scan_dir(os.path.join(path, sub), f"{rel}/{sub}" if rel else sub, out)


@dataclass
class TreeIndex:
    """Per environment (a subdirectory of root, or root itself), the directories holding its images.
    Directory d holds the file names blob[offsets[first[d]]:offsets[first[d] + counts[d]]]."""

    root: str
    environments: list[str]
    dirs: list[tuple[str, str, int]]  # (environment, directory relative to it, mtime_ns)
    counts: np.ndarray  # int64, images per directory
    blob: bytes
    offsets: np.ndarray  # int64, one more than the number of images
    from_cache: bool = False

    def __post_init__(self) -> None:
        self.first = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64) if len(self.counts) else \
            np.zeros(0, dtype=np.int64)

    def _dirs_of(self, env: str) -> list[int]:
        return sorted((d for d, (e, _, _) in enumerate(self.dirs) if e == env), key=lambda d: self.dirs[d][1])

    def classes(self, env: str) -> list[str]:
        """Class directories of an environment: its top-level subdirectories (with or without images)."""
        return sorted({self.dirs[d][1].split("/", 1)[0] for d in self._dirs_of(env) if self.dirs[d][1]})

    def class_counts(self, env: str) -> dict[str, int]:
        """Images below each class directory of an environment (0 for an empty class folder)."""
        counts: dict[str, int] = {}
        for d in self._dirs_of(env):
            rel = self.dirs[d][1]
            if rel:
                cls = rel.split("/", 1)[0]
                counts[cls] = counts.get(cls, 0) + int(self.counts[d])
        return counts

    def count(self, env: str) -> int:
        return int(sum(self.counts[d] for d in self._dirs_of(env)))

    def names(self, env: str, rel: str = "") -> list[str]:
        """The image names directly in one directory of an environment."""
        for d in self._dirs_of(env):
            if self.dirs[d][1] == rel:
                lo, hi = self.first[d], self.first[d] + self.counts[d]
                return [self.blob[self.offsets[k]:self.offsets[k + 1]].decode("utf-8") for k in range(lo, hi)]
        return []

    def files(self, env: str, class_of: dict[str, int]) -> tuple[FileIndex, np.ndarray]:
        """The environment's images under known class directories, in ImageFolder order (directories by
        path, names sorted), with labels; built from slices of the blob, without a string per file."""
        chosen = [d for d in self._dirs_of(env) if self.dirs[d][1] and self.dirs[d][1].split("/", 1)[0] in class_of]
        blobs, offsets, dir_of, position = [], [np.zeros(1, dtype=np.int64)], [], 0
        for j, d in enumerate(chosen):
            lo, hi = self.first[d], self.first[d] + self.counts[d]
            piece = self.offsets[lo:hi + 1]
            blobs.append(self.blob[piece[0]:piece[-1]])
            offsets.append(piece[1:] - piece[0] + position)
            position += int(piece[-1] - piece[0])
            dir_of.append(np.full(hi - lo, j, dtype=np.int32))
        rels = [self.dirs[d][1] for d in chosen]
        index = FileIndex(os.path.join(self.root, env) if env else self.root, rels,
                          np.concatenate(dir_of) if dir_of else np.zeros(0, dtype=np.int32),
                          b"".join(blobs), np.concatenate(offsets))
        per_dir = np.asarray([class_of[r.split("/", 1)[0]] for r in rels], dtype=np.int64)
        return index, per_dir[index.dir_of] if len(index) else np.zeros(0, dtype=np.int64)


def cache_dir() -> Path:
    return Path(os.environ.get("DAGRAD_CACHE_DIR") or Path.home() / ".cache" / "dagrad" / "index")


def _cache_file(root: str, envs: Optional[list[str]]) -> Path:
    key = json.dumps([CACHE_VERSION, os.path.abspath(root), envs])
    return cache_dir() / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".npz")


def index_tree(root: str | Path, environments: Optional[list[str]] = None, use_cache: bool = True) -> TreeIndex:
    """Index `root/<env>/**/<image>` for the given environment directories (None: every subdirectory;
    [""]: root itself is the one environment), from the cache when it is still valid."""
    root = os.path.abspath(root)
    path = _cache_file(root, environments)
    if use_cache:
        cached = _load(path, root)
        if cached is not None:
            return cached
    started = time.time_ns()
    root_mtime = os.stat(root).st_mtime_ns
    if environments is None:
        with os.scandir(root) as it:
            envs = sorted(e.name for e in it if e.is_dir() and not e.name.startswith("."))
    else:
        envs = list(environments)
    dirs, counts, names = [], [], []
    for env in envs:
        out: list = []
        _scan_dir(os.path.join(root, env) if env else root, "", out)
        for rel, mtime, files in out:
            dirs.append((env, rel, mtime))
            counts.append(len(files))
            names.extend(files)
    packed = FileIndex.from_pairs("", (("", n) for n in names))
    tree = TreeIndex(root, envs, dirs, np.asarray(counts, dtype=np.int64), packed.blob, packed.offsets)
    if use_cache:
        _save(path, tree, root_mtime, started)
    return tree


def _save(path: Path, tree: TreeIndex, root_mtime: int, started: int) -> None:
    """Write the index atomically (temp file, fsync, rename); a cache that cannot be written is skipped."""
    meta = {"version": CACHE_VERSION, "root": tree.root, "root_mtime": root_mtime, "started": started,
            "environments": tree.environments, "dirs": tree.dirs}
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), counts=tree.counts,
             offsets=tree.offsets, blob=np.frombuffer(tree.blob, dtype=np.uint8))
    try:
        write_atomic(path, lambda f: f.write(buffer.getvalue()))
    except StorageError:
        pass  # a cache that cannot be written is skipped


def _unchanged(path: str, mtime: int, started: int) -> bool:
    try:
        now = os.stat(path).st_mtime_ns
    except OSError:
        return False
    return now == mtime and mtime < started - int(RACY_SECONDS * 1e9)


def _load(path: Path, root: str) -> Optional[TreeIndex]:
    """The cached index if every directory it covers still has the mtime it had when scanned."""
    try:
        with np.load(path) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            counts, offsets, blob = data["counts"], data["offsets"], data["blob"].tobytes()
    except (OSError, ValueError, KeyError):
        return None
    if meta.get("version") != CACHE_VERSION or meta.get("root") != root:
        return None
    started = meta["started"]
    if not _unchanged(root, meta["root_mtime"], started):
        return None
    for env, rel, mtime in meta["dirs"]:
        if not _unchanged(os.path.join(root, env, rel) if rel else os.path.join(root, env), mtime, started):
            return None
    dirs = [(env, rel, mtime) for env, rel, mtime in meta["dirs"]]
    return TreeIndex(root, list(meta["environments"]), dirs, counts, blob, offsets, from_cache=True)
