"""What the container readers pull out of a file: text chunks, EXIF/XMP blocks and notes about damage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from photomapd.metadata._values import MAX_TEXT_BYTES, MAX_TOTAL_TEXT_BYTES


@dataclass
class Extracted:
    format: str = "unknown"  # png | jpeg | webp | unknown
    texts: dict[str, str] = field(default_factory=dict)  # key -> text, first occurrence wins, file order kept
    exif: bytes | None = None  # a TIFF block (without the "Exif\0\0" prefix)
    xmp: str | None = None
    comment: str | None = None  # JPEG COM segment
    modified: datetime | None = None  # PNG tIME
    errors: list[str] = field(default_factory=list)
    text_bytes: int = 0

    def note(self, message: str) -> None:
        if message not in self.errors and len(self.errors) < 20:  # a damaged file must not grow an unbounded list
            self.errors.append(message)

    def has_room(self, what: str, size: int) -> bool:
        """Whether `what` (a chunk, named for the note) of `size` bytes fits the per-chunk and per-file caps."""
        if size > MAX_TEXT_BYTES:
            self.note(f"{what} is {size} bytes, over the {MAX_TEXT_BYTES >> 20} MiB cap; skipped")
            return False
        if self.text_bytes + size > MAX_TOTAL_TEXT_BYTES:
            self.note(f"text chunks exceed {MAX_TOTAL_TEXT_BYTES >> 20} MiB in total; {what} skipped")
            return False
        self.text_bytes += size
        return True

    def add_text(self, key: str, text: str) -> None:
        if key and key not in self.texts:
            self.texts[key] = text
