"""Which file to decode for an image's vector: InvokeAI's own small thumbnail when it is as good, else the image.

InvokeAI saves every output as `<images>/[<subfolder>/]<name>.png` and, beside it, a WebP thumbnail that fits a 256 px
box at `<images>/thumbnails/[<subfolder>/]<name>.webp` (the subfolder comes from its `image_subfolder_strategy`: none,
a date `YYYY/MM/DD`, a type or a hash prefix). A 256 px WebP decodes in about a millisecond where a 1024² PNG takes
13–15 ms, and the model sees 224 or 256 px anyway, so for a square generation the thumbnail gives nearly the same
vector (BENCHMARKS.md, "Indexing at the hardware's limit") for a tenth of the decode. It is used only when it cannot
be worse than a stale or blurry stand-in: written no earlier than the image, with the image's aspect ratio, and at
least the model's input size on its short side (16:9 thumbnails are 256×144: too small, so the image is decoded).

The row still records the image's own width and height: `header_size` reads them from the header without decoding.
No torch here; this runs in the daemon's decode pool.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

from photomapd.images import MAX_IMAGE_PIXELS
from photomapd.model.preprocess import DecodedImage, InputSpec, decode_file

THUMBNAILS_DIR = "thumbnails"  # InvokeAI's folder name under outputs/images, for every release since 3.0
THUMBNAIL_SUFFIX = ".webp"
# The deepest subfolder strategy is the date one (YYYY/MM/DD): a thumbnail is looked for this many folders up at most,
# so an image far down an unrelated tree costs three failed stats, not a walk to the root.
MAX_SUBFOLDER_DEPTH = 3
# The image InvokeAI writes is always a PNG; other formats (a JPEG with an EXIF rotation) never get its thumbnails.
ORIGINAL_SUFFIX = ".png"


@dataclass(frozen=True)
class DecodeSource:
    path: Path  # the file to decode for the vector
    is_thumbnail: bool
    # The image's own size, read from its header, when `path` is a thumbnail (a decode of it would report 256×256);
    # None when `path` is the image itself, whose decode reports its size as it does today.
    original_size: tuple[int, int] | None = None


def header_size(path: Path) -> tuple[int, int]:
    """Width and height as the file declares them, from its header alone (Pillow reads a few hundred bytes and
    decodes no pixel). Raises OSError or Pillow's errors on a file that is not an image, DecompressionBombError over
    twice Pillow's own pixel limit (~179 MP)."""
    with Image.open(path) as image:
        return image.size


def thumbnail_candidates(image_path: Path) -> list[Path]:
    """Where InvokeAI would have put this image's thumbnail, nearest folder first: for `<root>/<sub>/<name>.png`,
    `<root>/thumbnails/<sub>/<name>.webp` for each ancestor `<root>` up to MAX_SUBFOLDER_DEPTH folders up."""
    if image_path.suffix.lower() != ORIGINAL_SUFFIX:
        return []
    name = image_path.stem + THUMBNAIL_SUFFIX
    candidates = []
    root, sub = image_path.parent, Path()
    for _ in range(MAX_SUBFOLDER_DEPTH + 1):
        if root.name == THUMBNAILS_DIR:  # a thumbnail's own folder holds no originals
            break
        candidates.append(root / THUMBNAILS_DIR / sub / name)
        if root.parent == root:
            break
        root, sub = root.parent, Path(root.name) / sub
    return candidates


def pick_decode_source(
    image_path: Path, input_size: tuple[int, int], *, image_mtime_ns: int | None = None
) -> DecodeSource:
    """The file to decode for `image_path`'s vector: its InvokeAI thumbnail when that is fresh, of the same aspect
    and covers `input_size` (height, width: the model's input) without upscaling; otherwise the image itself.

    Never raises: any doubt (a thumbnail that vanished, an unreadable header) means "decode the image", whose own
    decode then reports what is wrong with it. `image_mtime_ns` saves a stat when the scan already has it.
    """
    itself = DecodeSource(image_path, is_thumbnail=False)
    for candidate in thumbnail_candidates(image_path):
        try:
            thumb_stat = os.stat(candidate)
        except OSError:
            continue
        try:
            mtime_ns = image_mtime_ns if image_mtime_ns is not None else os.stat(image_path).st_mtime_ns
            if thumb_stat.st_mtime_ns < mtime_ns:
                return itself  # the image was rewritten after its thumbnail (an edit, a re-save): it may differ
            thumb_w, thumb_h = header_size(candidate)
            width, height = header_size(image_path)
        except Exception:  # noqa: BLE001 - Pillow raises many types on bad headers; all mean "use the image"
            return itself
        if width * height > MAX_IMAGE_PIXELS:
            return itself  # let the image's own decode refuse it with the reason the user reads
        if not is_same_aspect((width, height), (thumb_w, thumb_h)):
            return itself  # not this image's thumbnail (a name reused by another image, a crop)
        if thumb_w < input_size[1] or thumb_h < input_size[0]:
            return itself  # too small to cover the input (crop or squash): upscaling it would blur what the model sees
        return DecodeSource(candidate, is_thumbnail=True, original_size=(width, height))
    return itself


def is_same_aspect(original: tuple[int, int], thumbnail: tuple[int, int]) -> bool:
    """A thumbnail made by shrinking `original` into a box: each side is the scaled side, rounded, so the aspect
    agrees to within one thumbnail pixel on either side."""
    (width, height), (thumb_w, thumb_h) = original, thumbnail
    if min(width, height, thumb_w, thumb_h) <= 0:
        return False
    scale = max(thumb_w / width, thumb_h / height)
    return abs(width * scale - thumb_w) <= 1.0 and abs(height * scale - thumb_h) <= 1.0


def decode_for_embedding(image_path: Path, spec: InputSpec, mtime_ns: int | None = None) -> DecodedImage:
    """The model's input for `image_path`, decoded from its thumbnail when that is as good; the row's width and
    height are always the image's own."""
    source = pick_decode_source(image_path, spec.size, image_mtime_ns=mtime_ns)
    decoded = decode_file(source.path, spec)
    if source.original_size is None:
        return decoded
    width, height = source.original_size
    return replace(decoded, width=width, height=height)
