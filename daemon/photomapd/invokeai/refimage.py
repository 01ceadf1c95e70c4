"""Image bytes ready to upload to InvokeAI as a reference image: the type read from the bytes, never trusted.

A header or file name can lie (a page serving HTML as `image/png`, a `.png` that is a JPEG); InvokeAI stores the
upload under the content type we send, so it is taken from what Pillow sees. Formats InvokeAI can't open (HEIC, ...)
are re-encoded as PNG.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import PurePath

from PIL import Image

from photomapd.errors import RefBytesNotImage

# Pillow format -> (content type, extension) of what InvokeAI's upload accepts as is.
UPLOAD_FORMATS = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "WEBP": ("image/webp", ".webp"),
    "GIF": ("image/gif", ".gif"),
    "BMP": ("image/bmp", ".bmp"),
    "TIFF": ("image/tiff", ".tiff"),
}


@dataclass(frozen=True)
class Upload:
    filename: str
    content_type: str
    data: bytes


def prepare_upload(data: bytes, name: str = "reference") -> Upload:
    """Bytes as InvokeAI should receive them; raises RefBytesNotImage for anything that is not an image.

    CPU work (a re-encode for uncommon formats): call it through `asyncio.to_thread` from the daemon.
    """
    stem = PurePath(name).stem or "reference"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                known = UPLOAD_FORMATS.get(image.format or "")
                if known is not None:
                    content_type, suffix = known
                    return Upload(filename=stem + suffix, content_type=content_type, data=data)
                out = io.BytesIO()
                image.save(out, format="PNG")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise RefBytesNotImage() from exc
    return Upload(filename=stem + ".png", content_type="image/png", data=out.getvalue())
