"""Clusters on the map and a short label for each: mapview's helper, split out to keep each module on one concern.

Clusters come from HDBSCAN on the 2-D layout (bench/bench_map.py measured it against k-means on the vectors: the
regions it finds are the ones the user sees, and it needs no cluster count). Labels are the words that set a
cluster's prompts apart from the rest of the album (class-based TF-IDF); clusters of images without prompts get the
nearest of a fixed list of subjects by CLIP zero-shot when a text encoder is at hand.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from pydantic import BaseModel

if TYPE_CHECKING:
    from photomapd.store import AlbumTable

CLUSTER_SAMPLE = 20_000  # HDBSCAN runs on at most this many layout points; the rest join their nearest neighbour
MAX_CLUSTERS_HINT = 100  # min_cluster_size = points / this: regions under 1 % of an album get no name of their own
MIN_CLUSTER_POINTS = 15  # the floor for small albums, so a blob of 80 photos is not cut into crumbs
MIN_SAMPLES = 5  # below min_cluster_size: keeps HDBSCAN's density local, so fewer points end up as noise
LABEL_WORDS = 3
MIN_PROMPT_SHARE = 0.5  # a cluster is labelled from prompts only when at least half its images have one
_WORD = re.compile(r"[a-z][a-z'-]{2,}")
_TAGS = re.compile(r"<[^>]*>")  # <lora:name:0.8> and friends are not words of the picture
# Words that say nothing about what a picture shows; everything else too common across clusters drops out by IDF.
STOPWORDS = frozenset(
    "the and with for from into onto over under this that these those are was were has have had very its his her "
    "their our your not but all any can will just also more most much many some such than then there here while "
    "best quality masterpiece highly detailed detail high resolution res ultra photo image picture style score "
    "lora embedding negative prompt".split()
)
ZERO_SHOT_SUBJECTS = (
    "people", "portrait", "crowd", "child", "dog", "cat", "bird", "horse", "wildlife", "insect", "flowers", "trees",
    "forest", "mountains", "beach", "ocean", "lake", "river", "desert", "snow", "sky", "sunset", "night", "city",
    "street", "buildings", "interior", "kitchen", "food", "car", "train", "boat", "aircraft", "bicycle", "sports",
    "concert", "party", "wedding", "garden", "farm", "documents", "screenshot", "text", "drawing", "painting",
    "anime", "abstract pattern", "logo", "toys", "clothing", "jewelry", "machinery", "space",
)  # fmt: skip
ZERO_SHOT_TEMPLATE = "a photo of {}"

TextEncoder = Callable[[Sequence[str]], np.ndarray]


class ClusterInfo(BaseModel):
    id: int
    label: str


def assign_nearest(reference_xy: np.ndarray, reference_clusters: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """The cluster of each point's nearest reference point that has one (-1 when no reference point has one)."""
    known = reference_clusters >= 0
    if len(xy) == 0 or not known.any():
        return np.full(len(xy), -1, dtype=np.int64)
    from scipy.spatial import cKDTree  # scipy comes with scikit-learn; lazy like the rest of the maths stack

    _, nearest = cKDTree(reference_xy[known]).query(xy, k=1)
    return reference_clusters[known][nearest].astype(np.int64)


def needs_hdbscan(count: int) -> bool:
    """Fewer points make one cluster: no HDBSCAN, so no map process to start for it."""
    return count >= 2 * MIN_CLUSTER_POINTS


def cluster_layout(layout: np.ndarray, max_clusters_hint: int = MAX_CLUSTERS_HINT) -> np.ndarray:
    """A cluster id per point (0 = the largest cluster), every point in one; HDBSCAN's noise joins its neighbour."""
    count = len(layout)
    if not needs_hdbscan(count):
        return np.zeros(count, dtype=np.int64)
    from sklearn.cluster import HDBSCAN

    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(count, CLUSTER_SAMPLE, replace=False)) if count > CLUSTER_SAMPLE else np.arange(count)
    min_size = max(MIN_CLUSTER_POINTS, len(sample) // max_clusters_hint)
    found = HDBSCAN(min_cluster_size=min_size, min_samples=MIN_SAMPLES, copy=True).fit_predict(layout[sample])
    if (found < 0).all():
        return np.zeros(count, dtype=np.int64)
    clusters = assign_nearest(layout[sample], found, layout)
    # Renumber by size so ids (and the panel's colours) follow what is big, not HDBSCAN's tree order.
    order = np.argsort(-np.bincount(clusters), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return rank[clusters]


def prompt_words(prompt: str | None) -> set[str]:
    if not prompt:
        return set()
    return {word.strip("'-") for word in _WORD.findall(_TAGS.sub(" ", prompt.lower()))} - STOPWORDS - {""}


def distinctive_words(cluster_docs: list[set[str]], album_df: Counter[str], album_docs: int) -> list[str]:
    """Words frequent in this cluster's prompts and rare elsewhere: in-cluster share x log inverse album share."""
    inside: Counter[str] = Counter()
    for words in cluster_docs:
        inside.update(words)
    size = max(len(cluster_docs), 1)
    floor = max(2, math.ceil(0.1 * size)) if size >= 4 else 1  # one odd prompt must not name a whole cluster

    def score(word: str) -> float:
        share = inside[word] / size
        return share * (math.log((1 + album_docs) / (1 + album_df[word])) + 0.01)  # +0.01: one-cluster albums

    ranked = sorted((word for word, n in inside.items() if n >= floor), key=lambda w: (-score(w), w))
    return ranked[:LABEL_WORDS]


def _zero_shot(centroids: dict[int, np.ndarray], encode_text: TextEncoder) -> dict[int, str]:
    texts = np.asarray(encode_text([ZERO_SHOT_TEMPLATE.format(s) for s in ZERO_SHOT_SUBJECTS]), dtype=np.float32)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True) + 1e-12
    return {cid: ZERO_SHOT_SUBJECTS[int(np.argmax(texts @ centre))] for cid, centre in centroids.items()}


def label_clusters(
    table: AlbumTable,
    ids: np.ndarray,
    clusters: np.ndarray,
    vector_ids: np.ndarray,
    vectors: np.ndarray,
    encode_text: TextEncoder | None,
) -> list[ClusterInfo]:
    """A label per cluster id in `clusters` (rows `ids`); `vectors` (rows `vector_ids`) feed the zero-shot centroids."""
    prompt_table = table.arrow(["id", "positive_prompt"])
    by_id = dict(zip(prompt_table.column("id").to_pylist(), prompt_table.column("positive_prompt").to_pylist()))
    docs = [prompt_words(by_id.get(int(row_id))) for row_id in ids]
    album_df: Counter[str] = Counter()
    for words in docs:
        album_df.update(words)
    album_docs = sum(1 for words in docs if words)
    labels: dict[int, str] = {}
    unprompted: list[int] = []
    for cid in np.unique(clusters):
        members = [docs[i] for i in np.flatnonzero(clusters == cid)]
        with_prompt = [words for words in members if words]
        if len(with_prompt) >= MIN_PROMPT_SHARE * len(members):
            labels[int(cid)] = ", ".join(distinctive_words(with_prompt, album_df, album_docs))
        else:
            unprompted.append(int(cid))
    if unprompted and encode_text is not None and len(vectors):
        cluster_of = dict(zip(ids.tolist(), clusters.tolist()))
        vector_clusters = np.array([cluster_of.get(int(i), -1) for i in vector_ids])
        centroids = {}
        for cid in unprompted:
            members = vectors[vector_clusters == cid]
            if len(members):
                centre = members.mean(axis=0)
                centroids[cid] = centre / (np.linalg.norm(centre) + 1e-12)
        labels.update(_zero_shot(centroids, encode_text))
    return [ClusterInfo(id=int(cid), label=labels.get(int(cid), "")) for cid in np.unique(clusters)]
