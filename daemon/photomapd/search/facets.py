"""An album's own models, LoRAs and generators with their image counts: the panel's filter pick-lists.

Computed from the table (three columns, no vectors) and cached on it until its next write, so asking after every
finished run costs one scan per change, not one per panel open.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from photomapd.search.filters import UNKNOWN_GENERATOR
from photomapd.store import AlbumTable

# Values per list: a pick-list past a few hundred entries is typed into, not scrolled, and the filters match
# substrings, so the rarest names stay findable by typing. Keeps the answer small for a gallery with 10k LoRAs.
MAX_FACET_VALUES = 500


class Facet(BaseModel):
    value: str
    count: int  # images with this value


class AlbumFacets(BaseModel):
    total: int  # images in the album's index
    models: list[Facet]
    loras: list[Facet]
    generators: list[Facet]  # images without generation metadata count as "unknown"


NO_FACETS = AlbumFacets(total=0, models=[], loras=[], generators=[])


def _counted(values: pa.ChunkedArray | pa.Array) -> list[Facet]:
    """Most common first, then by name; nulls and empty names left out."""
    counts = pc.value_counts(pc.drop_null(values))
    pairs = [(entry["values"], entry["counts"]) for entry in counts.to_pylist() if entry["values"]]
    pairs.sort(key=lambda pair: (-pair[1], pair[0]))
    return [Facet(value=value, count=count) for value, count in pairs[:MAX_FACET_VALUES]]


def _compute(table: AlbumTable) -> AlbumFacets:
    rows = table.arrow(["model", "loras", "generator"])
    loras = pc.list_flatten(rows.column("loras"))
    generators = pc.fill_null(rows.column("generator"), UNKNOWN_GENERATOR)
    return AlbumFacets(
        total=rows.num_rows,
        models=_counted(rows.column("model")),
        loras=_counted(loras),
        generators=_counted(generators),
    )


def album_facets(table: AlbumTable | None) -> AlbumFacets:
    """The facets of `table` (none for an album not indexed yet). Blocking: call it in a thread."""
    if table is None:
        return NO_FACETS
    return table.memo("facets", lambda: _compute(table))
