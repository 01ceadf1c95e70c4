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
from typing import BinaryIO

from PIL import Image, ImageOps

from photomapd import config
from photomapd.errors import ImageUnreadable

log = logging.getLogger(__name__)

THUMB_EDGE_PX = 256  # the grid shows ~128 px cells; 2x keeps them sharp on HiDPI screens
THUMB_QUALITY = 80  # WebP quality: ~10 KB a thumbnail with no visible blocking at this size
# Refuse before decoding past this many pixels, so a crafted header can't make us allocate gigabytes (Pillow's own
# bomb check only fires at twice its warning threshold, which is this number; embed.py uses the same limit).
MAX_IMAGE_PIXELS = 178_956_970
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


def load_image(source: Path | BinaryIO, max_edge_px: int | None = None) -> Image.Image:
    """Decode an image (a path or uploaded bytes), upright per its EXIF orientation, its file closed.

    The pixel count is checked from the header before any decoding. With `max_edge_px` the image is shrunk to fit
    that box while decoding (JPEG decodes at a fraction of full size). Raises ImageUnreadable with the reason.
    """
    try:
        with Image.open(source) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise ImageUnreadable(f"Image too large ({width}x{height} pixels; limit {MAX_IMAGE_PIXELS:,})")
            if max_edge_px is not None:
                image.thumbnail((max_edge_px, max_edge_px), Image.Resampling.LANCZOS, reducing_gap=3.0)
            else:
                image.load()
            return ImageOps.exif_transpose(image)  # a new image: it outlives the closed file
    except Image.DecompressionBombError as exc:
        raise ImageUnreadable(f"Image too large: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # how Pillow reports bad or truncated data
        raise ImageUnreadable(f"Cannot decode image: {exc}") from exc


def load_image_bytes(data: bytes) -> Image.Image:
    return load_image(io.BytesIO(data))


def render_thumbnail(source: Path) -> bytes:
    """The WebP bytes of `source` shrunk to fit THUMB_EDGE_PX (never enlarged)."""
    image = load_image(source, THUMB_EDGE_PX)
    if image.mode not in ("RGB", "RGBA"):
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
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
