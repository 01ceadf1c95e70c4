"""256 px thumbnails, cached on disk under the cache dir and remade when the file changes.

A thumbnail's name carries the source file's (mtime_ns, size), so an edited file simply misses the cache and gets a
new one; the stale one is deleted then. Work here is blocking (Pillow): the API calls it through `asyncio.to_thread`.
The cache dir is disposable: deleting it only costs re-rendering.
"""

from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from photomapd import config
from photomapd.images import load_image

log = logging.getLogger(__name__)

THUMB_EDGE_PX = 256  # the grid shows ~128 px cells; 2x keeps them sharp on HiDPI screens
THUMB_QUALITY = 80  # WebP quality: ~10 KB a thumbnail with no visible blocking at this size
# Shrink by an integer factor (a JPEG decodes at 1/2..1/8 scale) down to no less than this many times the thumbnail,
# then resample with LANCZOS: Pillow documents 3.0 as indistinguishable from a full resample in most cases.
REDUCING_GAP = 3.0
THUMB_SUFFIX = ".webp"
THUMB_CONTENT_TYPE = "image/webp"


@dataclass(frozen=True)
class FileStamp:
    """What identifies one version of a file: a change to either means a new thumbnail (and a new ETag)."""

    mtime_ns: int
    size: int

    @classmethod
    def of(cls, path: Path) -> FileStamp:
        stat = path.stat()
        return cls(stat.st_mtime_ns, stat.st_size)

    @property
    def etag(self) -> str:
        return f'"t-{self.mtime_ns:x}-{self.size:x}"'


def render_thumbnail(source: Path) -> bytes:
    """The WebP bytes of `source` shrunk to fit THUMB_EDGE_PX (never enlarged), transparency kept.

    Raises FileNotFoundError when the source is gone, ImageUnreadable (too large, damaged, not an image) otherwise.
    """
    image = load_image(source, fit=round(THUMB_EDGE_PX * REDUCING_GAP), keep_alpha=True).image
    image.thumbnail((THUMB_EDGE_PX, THUMB_EDGE_PX), Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)
    out = io.BytesIO()
    image.save(out, "WEBP", quality=THUMB_QUALITY, method=4)
    return out.getvalue()


def thumb_path(album_key: str, row_id: int, stamp: FileStamp) -> Path:
    return config.thumbs_dir() / album_key / f"{row_id}-{stamp.mtime_ns}-{stamp.size}{THUMB_SUFFIX}"


def thumbnail(album_key: str, row_id: int, source: Path) -> tuple[bytes, FileStamp]:
    """The thumbnail bytes of row `row_id` (rendered and cached now if missing or stale) and the source's stamp.

    Raises FileNotFoundError when the source is gone, ImageUnreadable when it can't be decoded.
    """
    stamp = FileStamp.of(source)
    path = thumb_path(album_key, row_id, stamp)
    try:
        return path.read_bytes(), stamp
    except FileNotFoundError:
        pass
    data = render_thumbnail(source)
    _drop_stale(path.parent, row_id)
    try:
        # Atomic, so two requests racing for the same thumbnail both leave a whole file.
        config.write_atomic(path, data)
    except OSError:  # a full or read-only cache dir costs speed, not the thumbnail
        log.warning("could not cache the thumbnail %s", path, exc_info=True)
    return data, stamp


def _drop_stale(folder: Path, row_id: int) -> None:
    """Delete older thumbnails of this row (its file was edited) so the cache doesn't grow with every change."""
    if not folder.is_dir():
        return
    for old in folder.glob(f"{row_id}-*{THUMB_SUFFIX}"):
        try:
            os.unlink(old)
        except FileNotFoundError:  # another request got there first
            pass


def forget_album(album_key: str) -> None:
    """Delete an album's thumbnails (album removed or rebuilt)."""
    folder = config.thumbs_dir() / album_key
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        entry.unlink(missing_ok=True)
    folder.rmdir()
