"""Read embedded generation metadata (InvokeAI 1.x–6.x, A1111/Forge, ComfyUI, NovelAI, EXIF) into one model."""

from __future__ import annotations

from photomapd.metadata.model import ImageMetadata

__all__ = ["ImageMetadata"]
