"""Prompt keyword search: the words (and "quoted phrases") a prompt must hold, matched by the prompt's full-text
index in LanceDB (store.FTS_COLUMN), with a plain substring match for a table whose index isn't built yet.

The keyword matches are a set of row ids; rank.py intersects them with the filters and ranks them by CLIP when a
text or an image is given too, so "prompt contains `castle`" and "looks like a sunset" combine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from photomapd.errors import BadRequest
from photomapd.search.filters import SearchFilters, filters_to_where
from photomapd.store import AlbumTable

KEYWORDS_HAVE_NO_WORD = "The keywords contain no searchable word"
_PHRASE = re.compile(r'"([^"]*)"')
_WORD = re.compile(r"\w+")  # what the index's "simple" tokenizer splits on: runs of letters and digits


@dataclass(frozen=True)
class Keywords:
    words: list[str]  # each must appear (after stemming)
    phrases: list[str]  # each must appear as these words in this order


def parse_keywords(text: str) -> Keywords:
    """`castle "red fox"` → words [castle], phrases [red fox]; an unclosed quote is just a character."""
    phrases = [" ".join(_WORD.findall(found)) for found in _PHRASE.findall(text)]
    rest = _PHRASE.sub(" ", text)
    words = _WORD.findall(rest)
    phrases = [phrase for phrase in phrases if phrase]
    if not words and not phrases:
        raise BadRequest(KEYWORDS_HAVE_NO_WORD)
    return Keywords(words=words, phrases=phrases)


def _substring_where(keywords: Keywords) -> str:
    """The fallback: every word and phrase as a case-insensitive substring of the prompt (no stemming)."""
    clauses = [filters_to_where(SearchFilters(prompt=part)) for part in [*keywords.words, *keywords.phrases]]
    return " AND ".join(f"({clause})" for clause in clauses if clause)


def keyword_ids(table: AlbumTable, text: str, where: str | None) -> np.ndarray:
    """Ids of the rows among `where` whose prompt holds every keyword of `text`. Blocking: call it in a thread."""
    keywords = parse_keywords(text)
    if table.has_fts_index():
        return table.keyword_ids(keywords.words, keywords.phrases, where)
    # A table made before prompts were indexed, until the owner's next check or run builds the index.
    condition = _substring_where(keywords)
    if where is not None:
        condition = f"({where}) AND ({condition})"
    return table.arrow(["id"], condition).column("id").to_numpy()
