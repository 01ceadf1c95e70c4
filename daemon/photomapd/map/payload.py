"""The map payload the panel fetches, and its ETag: compact binary, decoded in place by the panel's JS.

Layout: `PMAP`, u32 header length, JSON header (space-padded so the arrays start 8-byte aligned), then ids (u32, or
u64 when an id needs it), x f32, y f32, cluster i16, all little-endian. Only rows with coordinates are sent.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from photomapd.map.layout import load_state
from photomapd.store import AlbumTable


PAYLOAD_MAGIC = b"PMAP"
PAYLOAD_FORMAT = 1
_ALIGN = 8  # arrays start 8-byte aligned so the panel can view them in place (BigUint64Array needs 8)


@dataclass(frozen=True)
class MapPayload:
    header: dict[str, Any]
    ids: np.ndarray
    x: np.ndarray
    y: np.ndarray
    cluster: np.ndarray


def map_etag(table: AlbumTable, album_key: str, condition: str | None = None) -> str:
    """Changes whenever the table (any write) or the layout changes; never hashes the payload."""
    state = load_state(album_key)
    layout = state.layout_version if state else 0
    narrowed = hashlib.sha1((condition or "").encode()).hexdigest()[:10]
    serial, writes = table.version
    return f'"map-{layout}-{table.name}-{serial}.{writes}-{narrowed}"'


def encode_map(table: AlbumTable, album_key: str, condition: str | None = None) -> bytes:
    """`PMAP`, u32 header length, JSON header (space-padded), then ids, x f32, y f32, cluster i16; little-endian."""
    where = "x IS NOT NULL AND y IS NOT NULL" + (f" AND ({condition})" if condition else "")
    data = table.arrow(["id", "x", "y", "cluster"], where)
    order = np.argsort(data.column("id").to_numpy(), kind="stable")
    ids = data.column("id").to_numpy()[order]
    x = data.column("x").to_numpy().astype("<f4")[order]
    y = data.column("y").to_numpy().astype("<f4")[order]
    cluster = data.column("cluster").fill_null(-1).to_numpy().astype("<i2")[order]
    wide = len(ids) > 0 and int(ids.max()) > np.iinfo(np.uint32).max
    state = load_state(album_key)
    labels = {info.id: info.label for info in state.clusters} if state else {}
    present = cluster >= 0
    sizes = np.bincount(cluster[present], minlength=1)
    sum_x = np.bincount(cluster[present], weights=x[present], minlength=1)
    sum_y = np.bincount(cluster[present], weights=y[present], minlength=1)
    header = {
        "format": PAYLOAD_FORMAT,
        "count": int(len(ids)),
        "id_type": "uint64" if wide else "uint32",
        "bounds": [float(x.min()), float(y.min()), float(x.max()), float(y.max())] if len(ids) else None,
        "layout_version": state.layout_version if state else 0,
        "table_version": table.version[1],
        "pending": table.count("x IS NULL OR y IS NULL"),
        "clusters": [
            {"id": cid, "label": labels.get(cid, ""), "count": int(n), "x": sum_x[cid] / n, "y": sum_y[cid] / n}
            for cid, n in enumerate(sizes.tolist())
            if n > 0
        ],
    }
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(PAYLOAD_MAGIC) + 4 + len(text)) % _ALIGN)
    parts = [PAYLOAD_MAGIC, struct.pack("<I", len(text)), text, ids.astype("<u8" if wide else "<u4"), x, y, cluster]
    return b"".join(part if isinstance(part, bytes) else part.tobytes() for part in parts)


def decode_map(payload: bytes) -> MapPayload:
    """The reference decoder (the panel's JS does the same); raises ValueError on a malformed payload."""
    if payload[:4] != PAYLOAD_MAGIC or len(payload) < 8:
        raise ValueError("not a PhotoMap map payload")
    (header_len,) = struct.unpack_from("<I", payload, 4)
    header = json.loads(payload[8 : 8 + header_len])
    count, offset = int(header["count"]), 8 + header_len
    arrays = []
    for dtype in ("<u8" if header["id_type"] == "uint64" else "<u4", "<f4", "<f4", "<i2"):
        arrays.append(np.frombuffer(payload, dtype=dtype, count=count, offset=offset))
        offset += count * np.dtype(dtype).itemsize
    if offset != len(payload):
        raise ValueError("map payload length does not match its header")
    return MapPayload(header, *arrays)
