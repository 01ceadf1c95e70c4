"""Read embedded generation metadata (InvokeAI 1.x–6.x, A1111/Forge, ComfyUI, SwarmUI, NovelAI, EXIF) into one model.

`read_metadata(path)` and `parse_metadata_bytes(data)` never raise for any file content: damage, caps and unknown
shapes are reported in the record's `error`, and unknown InvokeAI shapes keep `recallable=False` with `raw` intact.
"""

from __future__ import annotations

from photomapd.metadata.model import ImageMetadata
from photomapd.metadata.reader import parse_metadata_bytes, read_metadata

__all__ = ["ImageMetadata", "parse_metadata_bytes", "read_metadata"]
