"""The one image decoder: a file or uploaded bytes in, upright 8-bit pixels out, or ImageUnreadable with the reason.

Indexing (model/embed.py), thumbnails (thumbs.py) and search uploads (search/query.py) all decode through
`load_image`, so they share one pixel cap, one list of formats and one set of user-readable reasons (the indexer lists
the reason next to a skipped file; the API sends it as the error message). The declared size is read from the header
and checked before Pillow allocates the pixel buffer, so a small file claiming gigapixels costs nothing. No torch here.
"""

from __future__ import annotations

import io
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from photomapd.errors import ImageUnreadable

# The largest single-shot camera sensors are ~151 MP (Phase One IQ4: 14204x10652) and an 8k x 8k AI upscale is
# 67 MP, so this admits every real photo while a forged header (a 13000x13000 "PNG" of 20 KB) is refused before its
# ~500 MB buffer exists. It also bounds the decode pool's memory: 4 bytes a pixel (RGBA) x 160 MP = 640 MB a worker.
MAX_IMAGE_PIXELS = 160_000_000
# What cameras, browsers and image generators write. Everything else Pillow can open (EPS runs Ghostscript, plus
# dozens of scientific and legacy formats) is refused unread, so a hostile upload only meets these decoders.
# JPEG includes multi-picture (MPO) camera files; AVIF and HEIF decode only where Pillow has the codec or plugin
# (index/scan.py registers pillow-heif when it is installed).
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
FORMAT_NAMES = "PNG, JPEG, WebP, GIF, BMP, TIFF, AVIF or HEIC"
# Pillow reports hostile or damaged data through all of these (struct.error and IndexError from TIFF/EXIF parsing).
_PILLOW_DATA_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, KeyError)
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})

_EMPTY = "The file is empty (0 bytes)"
_TOO_LARGE = f"The image is too large: more than {MAX_IMAGE_PIXELS:,} pixels"
_NOT_AN_IMAGE = f"Not an image, or a format PhotoMap cannot decode (it reads {FORMAT_NAMES})"


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image  # decoded, upright (EXIF orientation applied), mode RGB, or RGBA when asked to keep alpha
    width: int  # the size the file declares, before any reduced decode or rotation
    height: int


def load_image(
    source: Path | bytes,
    *,
    cover: tuple[int, int] | None = None,
    fit: int | None = None,
    keep_alpha: bool = False,
) -> LoadedImage:
    """Decode `source` (a file path or the bytes of an upload) after checking its declared size against the cap.

    A JPEG may decode at 1/2, 1/4 or 1/8 scale, which is most of the time saved on a big photo, when the caller
    shrinks it anyway: with `cover` (width, height) while it still covers that box (the embedder's centre crop), with
    `fit` while its longer edge is still at least that long (a thumbnail's box). FileNotFoundError propagates (the
    caller says "file gone"); every other failure raises ImageUnreadable with a reason a user can read.
    """
    if isinstance(source, bytes):
        if not source:
            raise ImageUnreadable(_EMPTY)
        with io.BytesIO(source) as stream:
            return _decode(stream, cover, fit, keep_alpha)
    try:
        stream = open(source, "rb")  # closed below; opened here so that "gone" stays FileNotFoundError
    except FileNotFoundError:
        raise
    except OSError as exc:  # permissions, a directory, an unplugged disk
        raise ImageUnreadable(f"The file cannot be opened: {exc.strerror or exc}") from exc
    with stream:
        if os.fstat(stream.fileno()).st_size == 0:
            raise ImageUnreadable(_EMPTY)
        return _decode(stream, cover, fit, keep_alpha)


def _decode(stream: BinaryIO, cover: tuple[int, int] | None, fit: int | None, keep_alpha: bool) -> LoadedImage:
    # We own `stream`, so the decoded image stays usable after it closes (Pillow closes only files it opened itself).
    try:
        image = Image.open(stream, formats=_registered_formats())
    except Image.DecompressionBombError as exc:  # Pillow's own (larger) limit fired before ours could
        raise ImageUnreadable(_TOO_LARGE) from exc
    except UnidentifiedImageError as exc:
        raise ImageUnreadable(_NOT_AN_IMAGE) from exc
    except _PILLOW_DATA_ERRORS as exc:  # a known format whose header is broken
        raise _damaged(exc) from exc
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ImageUnreadable(
            f"The image is too large: {width}x{height} pixels, over PhotoMap's limit of {MAX_IMAGE_PIXELS:,}"
        )
    try:
        draft_box = _draft_box(width, height, cover, fit)
        if draft_box is not None:
            image.draft(None, draft_box)  # JPEG only; other formats ignore it
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        return LoadedImage(_to_8bit(image, keep_alpha), width, height)
    except Image.DecompressionBombError as exc:  # a later frame or tile declaring more than the header did
        raise ImageUnreadable(_TOO_LARGE) from exc
    except MemoryError as exc:
        raise ImageUnreadable(f"Not enough memory to decode this {width}x{height} image") from exc
    except _PILLOW_DATA_ERRORS as exc:
        raise _damaged(exc) from exc


def _damaged(exc: Exception) -> ImageUnreadable:
    if "truncated" in str(exc).lower():  # how Pillow words "the data ends early", in its OSError messages
        return ImageUnreadable("The image file is cut short (truncated): still being copied, or damaged")
    return ImageUnreadable(f"The image is damaged and cannot be decoded ({exc})")


def _registered_formats() -> tuple[str, ...]:
    """FORMATS that can open here: Pillow fails on a name with no plugin instead of skipping it."""
    Image.init()  # registers the bundled plugins once; a no-op afterwards
    return tuple(name for name in FORMATS if name in Image.OPEN)


def _draft_box(width: int, height: int, cover: tuple[int, int] | None, fit: int | None) -> tuple[int, int] | None:
    """The box a reduced JPEG must still cover; for `fit`, the image's own aspect with its longer edge at `fit`."""
    if cover is not None or fit is None:
        return cover
    scale = fit / max(width, height, 1)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _to_8bit(image: Image.Image, keep_alpha: bool) -> Image.Image:
    """RGB (or RGBA), converting only when needed: a copy of a large image costs as much as a small decode."""
    if image.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion clips 16-bit grey at 255 (a white image); keep the high byte instead.
        grey = np.right_shift(np.clip(np.asarray(image), 0, 65535), 8).astype(np.uint8)
        image = Image.fromarray(grey)  # 2-D uint8: mode L
    has_alpha = "A" in image.getbands() or "transparency" in image.info
    wanted = "RGBA" if keep_alpha and has_alpha else "RGB"
    return image if image.mode == wanted else image.convert(wanted)
