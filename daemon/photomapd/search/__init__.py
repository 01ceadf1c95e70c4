"""Search: filters as SQL, query vectors, exact or ANN ranking, near-duplicate groups.

The public surface the API, the CLI and the map use, re-exported on purpose.
"""

from photomapd.search.filters import SearchFilters, filters_to_where
from photomapd.search.query import SearchRequest, compose_query, query_vector
from photomapd.search.rank import SearchHit, SearchPage, search_table
from photomapd.search.vectors import VectorCache, ensure_ann_index

__all__ = ["SearchFilters", "SearchHit", "SearchPage", "SearchRequest", "VectorCache", "compose_query",
           "ensure_ann_index", "filters_to_where", "query_vector", "search_table"]  # fmt: skip
