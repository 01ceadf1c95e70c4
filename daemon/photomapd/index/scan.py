"""Walk album folders and diff what is on disk against what is indexed. The only module that walks the filesystem.

The diff is by path plus (mtime_ns, size): a file whose pair matches its row is unchanged and never decoded.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

from photomapd.store import StatRow

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp"})
# InvokeAI keeps 256 px copies of every output in outputs/images/thumbnails/ (older releases) — not gallery images.
SKIPPED_DIR_NAMES = frozenset({"thumbnails"})

try:  # HEIC support only when the optional plugin is installed
    import pillow_heif  # type: ignore[import-not-found]

    pillow_heif.register_heif_opener()
    IMAGE_SUFFIXES = IMAGE_SUFFIXES | {".heic", ".heif"}
except ImportError:
    pass


@dataclass(frozen=True)
class FileStat:
    path: str  # absolute
    folder: str  # the album folder it was found under
    mtime_ns: int
    size: int


@dataclass
class IndexDiff:
    new: list[FileStat] = field(default_factory=list)
    changed: list[tuple[FileStat, int]] = field(default_factory=list)  # with the row id the file keeps
    removed: list[int] = field(default_factory=list)  # row ids
    unchanged: int = 0

    @property
    def to_embed(self) -> int:
        return len(self.new) + len(self.changed)

    @property
    def is_empty(self) -> bool:
        return not (self.new or self.changed or self.removed)


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def is_skipped_dir(name: str) -> bool:
    return is_hidden(name) or name in SKIPPED_DIR_NAMES


def _walk(folder: str, root: str) -> Iterator[FileStat]:
    try:
        entries = list(os.scandir(folder))
    except OSError as exc:  # unreadable subfolder: skip it, keep walking the rest
        log.warning("cannot list %s: %s", folder, exc)
        return
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                if not is_skipped_dir(entry.name):
                    yield from _walk(entry.path, root)
            elif not is_hidden(entry.name) and is_image_name(entry.name) and entry.is_file():
                info = entry.stat()
                yield FileStat(entry.path, root, info.st_mtime_ns, info.st_size)
        except OSError as exc:  # vanished mid-walk or unreadable
            log.debug("skipping %s: %s", entry.path, exc)


def scan_folders(folders: Sequence[str]) -> Iterator[FileStat]:
    """Every image file under the album folders (recursive; hidden folders and `thumbnails/` skipped)."""
    seen: set[str] = set()
    for folder in folders:
        root = os.path.abspath(folder)
        for found in _walk(root, root):
            if found.path not in seen:  # overlapping folders list a file once
                seen.add(found.path)
                yield found


def album_folder_of(path: str, folders: Sequence[str]) -> str | None:
    """The album folder that contains `path` (deepest match), or None when it is outside all of them."""
    best: str | None = None
    for folder in folders:
        root = os.path.abspath(folder)
        if path.startswith(root.rstrip(os.sep) + os.sep) and (best is None or len(root) > len(best)):
            best = root
    return best


def is_in_album(path: str, folders: Sequence[str]) -> bool:
    """True when `path` is an image the album's scan would find (not hidden, not in a skipped folder)."""
    root = album_folder_of(path, folders)
    if root is None or not is_image_name(path):
        return False
    parts = Path(path[len(root) :]).parts[1:]
    return not any(is_skipped_dir(part) for part in parts[:-1]) and not is_hidden(parts[-1] if parts else "")


def stat_paths(paths: Iterable[str], folders: Sequence[str]) -> Iterator[FileStat]:
    """FileStats for just these paths (a watcher's change set); paths that vanished or are not album images are
    left out, so the diff sees them as removed."""
    for path in paths:
        path = os.path.abspath(path)
        root = album_folder_of(path, folders)
        if root is None or not is_in_album(path, folders):
            continue
        try:
            info = os.stat(path)
        except OSError:
            continue
        if os.path.isfile(path):
            yield FileStat(path, root, info.st_mtime_ns, info.st_size)


def diff_index(scanned: Iterable[FileStat], indexed: Mapping[str, StatRow], scope: set[str] | None = None) -> IndexDiff:
    """Compare a scan with the table's (path → id, mtime_ns, size).

    `scope` limits removals to those paths (a partial scan of a watcher's change set); None means the scan was full,
    so every indexed path not seen is removed.
    """
    diff = IndexDiff()
    seen: set[str] = set()
    for found in scanned:
        seen.add(found.path)
        row = indexed.get(found.path)
        if row is None:
            diff.new.append(found)
        elif (row.mtime_ns, row.size) != (found.mtime_ns, found.size):
            diff.changed.append((found, row.id))
        else:
            diff.unchanged += 1
    candidates = indexed.keys() if scope is None else (scope & indexed.keys())
    diff.removed = [indexed[path].id for path in candidates if path not in seen]
    return diff
