"""Near-duplicate groups: images whose vectors have cosine >= a threshold, joined transitively.

Comparing all pairs is n^2: fine for a few thousand rows, far too slow for 100k. Past `EXACT_MAX_ROWS` rows are
bucketed by their two nearest "pivots" (rows drawn at random) and only rows sharing a bucket are compared. Two
near-duplicates are so close that they almost always share their nearest pivot, and the second pivot catches the
pairs that straddle a boundary; the tests plant duplicates to hold this to account.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel

DEFAULT_THRESHOLD = 0.95  # CLIP cosine of re-encodes, crops and upscales of one image; distinct images rarely pass
EXACT_MAX_ROWS = 4_000  # all pairs below this: 4k x 4k x 512 is well under a second
ROWS_PER_PIVOT = 1_000  # bucket size target: each bucket is compared all-pairs, so cost grows with it
BLOCK_ROWS = 1_024  # rows per matrix product: bounds the temporary similarity block to BLOCK_ROWS x bucket floats
PIVOT_SEED = 7  # fixed, so the same table gives the same groups


class DuplicateGroup(BaseModel):
    ids: list[int]  # ascending
    score: float  # the highest similarity between two members


def _pairs_within(vectors: np.ndarray, members: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for i < j among `members` (row positions) with similarity >= threshold."""
    found: list[tuple[int, int, float]] = []
    bucket = vectors[members]
    for start in range(0, len(members), BLOCK_ROWS):
        sims = bucket[start : start + BLOCK_ROWS] @ bucket.T
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i, j = int(members[start + r]), int(members[c])
            if i < j:
                found.append((i, j, float(sims[r, c])))
    return found


def _buckets(vectors: np.ndarray) -> list[np.ndarray]:
    n = len(vectors)
    if n <= EXACT_MAX_ROWS:
        return [np.arange(n)]
    rng = np.random.default_rng(PIVOT_SEED)
    pivots = vectors[rng.choice(n, size=max(2, n // ROWS_PER_PIVOT), replace=False)]
    nearest = np.empty((n, 2), dtype=np.int64)
    for start in range(0, n, BLOCK_ROWS * 8):
        sims = vectors[start : start + BLOCK_ROWS * 8] @ pivots.T
        nearest[start : start + len(sims)] = np.argpartition(-sims, 1, axis=1)[:, :2]
    rows = np.concatenate([np.arange(n), np.arange(n)])
    cells = np.concatenate([nearest[:, 0], nearest[:, 1]])
    order = np.argsort(cells, kind="stable")
    cells, rows = cells[order], rows[order]
    bounds = np.flatnonzero(np.diff(cells)) + 1
    return [bucket for bucket in np.split(rows, bounds) if len(bucket) > 1]


def duplicate_groups(ids: np.ndarray, vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[DuplicateGroup]:
    """Groups of 2+ rows linked by similarity >= threshold, largest first. `vectors` are unit rows."""
    parent = np.arange(len(ids))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the chains short
            i = int(parent[i])
        return i

    best: dict[tuple[int, int], float] = {}
    for bucket in _buckets(vectors):
        for i, j, sim in _pairs_within(vectors, bucket, threshold):
            best[(i, j)] = sim
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    scores: dict[int, float] = {}
    for (i, j), sim in best.items():
        group = root(i)
        scores[group] = max(scores.get(group, -1.0), sim)
    for i in {i for pair in best for i in pair}:
        members.setdefault(root(i), []).append(int(ids[i]))
    groups = [DuplicateGroup(ids=sorted(found), score=round(scores[key], 5)) for key, found in members.items()]
    groups.sort(key=lambda group: (-len(group.ids), -group.score, group.ids[0]))
    return groups
