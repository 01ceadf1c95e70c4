"""Issue 15's search for the panel, over a real loopback server: an album of the real fixture files indexed by the
indexer's own metadata columns, then filters as a user types them, facets for pick-lists, sort orders, the
score cut, and prompt keywords through LanceDB's full-text index.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photomapd.api.keys import CONFIG, STORE
from photomapd.config import AlbumConfig
from photomapd.index.run import metadata_columns
from photomapd.search.filters import SEED_NOT_A_NUMBER
from photomapd.search.query import BEST_NEEDS_QUERY
from photomapd.search.rank import AUTO_CUT_BELOW_BEST
from photomapd.search.text import KEYWORDS_HAVE_NO_WORD
from photomapd.store import TableInfo

FIXTURES = Path(__file__).parents[2] / "fixtures" / "images"
DIM = 512  # ViT-B-32's: text queries are embedded by the daemon's own model
NO_METADATA = {"gimp-resaved-nometa.png", "plain-nometa.jpg"}


@pytest.fixture
async def fixtures_album(api: Any, tmp_path: Path) -> dict[str, int]:
    """The real fixture images as the indexer stores them (its own metadata columns), with random unit vectors: the
    model's vectors of noise-free art say nothing a test could check. Returns file name → row id."""
    folder = tmp_path / "fixtures"
    shutil.copytree(FIXTURES, folder)
    files = sorted(folder.iterdir())
    vectors = np.random.default_rng(15).normal(size=(len(files), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    app = api.server.app
    app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="real", display_name="Real", folders=[str(folder)])))
    table = app[STORE].create("real", TableInfo(model="ViT-B-32", pretrained="none", dim=DIM))
    table.upsert([
        {"id": i + 1, "path": str(path), "folder": str(folder), "mtime_ns": 1, "size": 1, "width": 64, "height": 64,
         "vector": vectors[i].tolist(), **metadata_columns(path)}
        for i, path in enumerate(files)
    ])  # fmt: skip
    return {path.name: i + 1 for i, path in enumerate(files)}


async def search(api: Any, body: dict[str, Any], status: int = 200, key: str = "real") -> dict[str, Any]:
    response = await api.post(f"/api/v1/albums/{key}/search", json=body)
    assert response.status == status, await response.text()
    return await response.json()


def names(page: dict[str, Any], ids: dict[str, int]) -> set[str]:
    by_id = {row_id: name for name, row_id in ids.items()}
    return {by_id[hit["id"]] for hit in page["results"]}


async def test_filters_match_as_a_user_types_them(api: Any, fixtures_album: dict[str, int]) -> None:
    ids = fixtures_album
    jugg = await search(api, {"filters": {"model": "juggernaut"}})  # stored as "juggernautXL"
    assert names(jugg, ids) == {"invokeai-3.x-metadata-only-ipadapter-cropped.png"}
    wai = await search(api, {"filters": {"model": "WAIILLUSTRIOUS"}, "limit": 50})
    assert len(wai["results"]) == wai["total"] == 5  # a1111 ×2, comfyui-03 (".safetensors"), invokeai 6.10, swarmui
    lora = await search(api, {"filters": {"lora": "dream-shaper"}})
    assert names(lora, ids) == {"invokeai-3.x-metadata-only-loras.png"}
    unknown = await search(api, {"filters": {"generator": "unknown"}, "limit": 50})
    assert names(unknown, ids) == NO_METADATA
    assert (await search(api, {"filters": {"generator": "InvokeAI"}, "limit": 50}))["total"] == 13
    # SQL's wildcards and quotes are literal characters in a filter value
    for value in ("%", "o'brien", "\\"):
        assert (await search(api, {"filters": {"model": value}}))["total"] == 0
    underscored = await search(api, {"filters": {"model": "_"}, "limit": 50})
    assert all("_" in hit["model"] for hit in underscored["results"]) and underscored["total"] == 10


async def test_seed_filter_takes_the_typed_text_and_refuses_a_non_number(api: Any, fixtures_album: dict[str, int]) -> None:
    table = api.server.app[STORE].open("real")
    seeded = [row for row in table.where("seed IS NOT NULL", ["id", "seed"])]
    target = seeded[0]
    page = await search(api, {"filters": {"seed": f" {target['seed']} "}, "limit": 50})
    assert target["id"] in {hit["id"] for hit in page["results"]}
    assert page["total"] == sum(1 for row in seeded if row["seed"] == target["seed"])
    assert (await search(api, {"filters": {"seed": ""}}))["total"] == len(fixtures_album)  # empty field: no filter
    for typed in ("12a", "1.5", "seed", "²"):
        refused = await search(api, {"filters": {"seed": typed}}, 400)
        assert refused["error"] == {"code": "bad_request", "message": SEED_NOT_A_NUMBER}
    map_refused = await api.get("/api/v1/albums/real/map?seed=abc")
    assert map_refused.status == 400 and (await map_refused.json())["error"]["message"] == SEED_NOT_A_NUMBER


async def test_facets_list_the_albums_own_values_with_counts(api: Any, fixtures_album: dict[str, int]) -> None:
    resp = await api.get("/api/v1/albums/real/facets")
    assert resp.status == 200
    facets = await resp.json()
    assert facets["total"] == len(fixtures_album)
    generators = {facet["value"]: facet["count"] for facet in facets["generators"]}
    assert generators["unknown"] == 2 and generators["invokeai"] == 13 and generators["a1111"] == 4
    assert sum(generators.values()) == facets["total"]
    assert facets["generators"][0] == {"value": "invokeai", "count": 13}  # most common first
    models = {facet["value"]: facet["count"] for facet in facets["models"]}
    assert models["juggernautXL"] == 1 and models["CCXL-One_vB5b"] == 2
    assert facets["loras"] == [{"value": "CC-Dream-Shaper_vBeta1", "count": 1}]
    # each value, used as a filter, finds exactly its count (substrings may find more: none of these overlap)
    for facet in facets["models"][:3]:
        page = await search(api, {"filters": {"model": facet["value"]}, "limit": 1})
        assert page["total"] >= facet["count"]
    assert (await api.get("/api/v1/albums/nope/facets")).status == 404


async def test_facets_of_an_album_not_indexed_yet_are_empty(api: Any) -> None:
    api.server.app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="new", display_name="N", folders=["/n"])))
    facets = await (await api.get("/api/v1/albums/new/facets")).json()
    assert facets == {"total": 0, "models": [], "loras": [], "generators": []}


async def test_prompt_keywords_find_the_prompts_that_hold_them(api: Any, fixtures_album: dict[str, int]) -> None:
    ids = fixtures_album
    table = api.server.app[STORE].open("real")
    assert table.has_fts_index(), "the table is made with its prompt index"
    duck = await search(api, {"keywords": "Duck"})
    assert names(duck, ids) == {"a1111-parameters-01-cropped.png", "a1111-parameters-ztxt-after-idat.png"}
    # every word must appear; stemming finds "spheres" in "sphere"
    both = await search(api, {"keywords": "spheres cube"})
    assert names(both, ids) == {"invokeai-1.15-dream-sdmeta-weighted.png", "invokeai-3.0.2-metadata-graph.png"}
    assert (await search(api, {"keywords": "sphere whale"}))["total"] == 0
    # a quoted phrase must appear in that order
    phrase = await search(api, {"keywords": '"martial artist"'})
    assert names(phrase, ids) == {"invokeai-3.x-metadata-only-loras.png"}
    assert (await search(api, {"keywords": '"artist martial"'}))["total"] == 0
    # keywords combine with filters and with a CLIP query (then ranked by score)
    miku = await search(api, {"keywords": "miku", "filters": {"generator": "comfyui"}, "limit": 50})
    assert names(miku, ids) == {"comfyui-02.png", "comfyui-03.png"}
    ranked = await search(api, {"keywords": "miku", "image_id": ids["swarmui-01.png"], "limit": 50})
    assert ranked["total"] == ranked["ranked"] == 6 and ranked["results"][0]["id"] == ids["swarmui-01.png"]
    assert all(hit["score"] is not None for hit in ranked["results"])
    refused = await search(api, {"keywords": " ,; "}, 400)
    assert refused["error"]["message"] == KEYWORDS_HAVE_NO_WORD


async def test_keywords_find_rows_written_after_the_index_and_not_deleted_ones(api: Any, fixtures_album: dict[str, int]) -> None:
    """The prompt index is never rebuilt for a search: rows written since are found beside it."""
    table = api.server.app[STORE].open("real")
    row = table.get(fixtures_album["novelai-01-cropped.png"])
    assert row is not None
    table.upsert([{**row, "id": 900, "path": "/new/zebra.png", "positive_prompt": "a zebra crossing the street"}])
    assert [hit["id"] for hit in (await search(api, {"keywords": "zebras"}))["results"]] == [900]
    table.delete_ids([900])
    assert (await search(api, {"keywords": "zebra"}))["total"] == 0


async def test_sort_orders_and_best_match_needs_a_query(api: Any, fixtures_album: dict[str, int]) -> None:
    table = api.server.app[STORE].open("real")
    table.update_columns([{"id": fixtures_album["plain-nometa.jpg"], "created_at": None}])  # a file with no date
    rows = table.where(None, ["id", "created_at"])
    undated = sorted(row["id"] for row in rows if row["created_at"] is None)
    dated = sorted((row["created_at"], row["id"]) for row in rows if row["created_at"] is not None)
    assert len(dated) >= 3 and undated
    everything = {"limit": 50}
    oldest = await search(api, {**everything, "sort": "oldest"})
    newest = await search(api, {**everything, "sort": "newest"})
    default = await search(api, everything)
    old_name = await search(api, {**everything, "sort": "date"})
    assert [hit["id"] for hit in oldest["results"]] == [row_id for _, row_id in dated] + undated  # undated last
    assert [hit["id"] for hit in newest["results"]] == [row_id for _, row_id in reversed(dated)] + undated[::-1]
    assert [hit["id"] for hit in default["results"]] == [hit["id"] for hit in newest["results"]]
    assert [hit["id"] for hit in old_name["results"]] == [hit["id"] for hit in newest["results"]]
    for sort in ("best", "score"):
        refused = await search(api, {"sort": sort}, 400)
        assert refused["error"] == {"code": "bad_request", "message": BEST_NEEDS_QUERY}
    by_date = await search(api, {"image_id": dated[0][1], "sort": "oldest", "filters": {"generator": "invokeai"}})
    dates = [hit["created_at"] for hit in by_date["results"] if hit["created_at"]]
    assert dates == sorted(dates) and all(hit["score"] is not None for hit in by_date["results"])


async def test_text_queries_are_cut_near_the_best_match_unless_asked_not_to(api: Any, fixtures_album: dict[str, int]) -> None:
    cut = await search(api, {"text": "a photo of a duck", "limit": 50})
    full = await search(api, {"text": "a photo of a duck", "auto_cut": False, "limit": 50})
    scores = [hit["score"] for hit in full["results"]]
    best = scores[0]
    assert full["total"] == full["ranked"] == len(fixtures_album) and full["cut"]["mode"] == "none"
    assert cut["cut"]["mode"] == "auto" and cut["cut"]["best_score"] == pytest.approx(best, abs=1e-5)
    assert cut["cut"]["min_score"] == pytest.approx(best - AUTO_CUT_BELOW_BEST, abs=1e-4)
    # exactly the results within the margin of the best, and the total says so
    assert cut["total"] == sum(1 for score in scores if score >= best - AUTO_CUT_BELOW_BEST)
    assert [hit["id"] for hit in cut["results"]] == [hit["id"] for hit in full["results"]][: cut["total"]]
    assert cut["ranked"] == len(fixtures_album)
    # an absolute min_score replaces the automatic cut; image queries are not cut by default
    median = float(np.median(scores))
    absolute = await search(api, {"text": "a photo of a duck", "min_score": median, "limit": 50})
    assert absolute["cut"]["mode"] == "min_score"
    assert absolute["total"] == sum(1 for score in scores if score >= median)
    image = await search(api, {"image_id": fixtures_album["novelai-01-cropped.png"], "limit": 1})
    assert image["cut"]["mode"] == "none" and image["total"] == len(fixtures_album)


async def test_keywords_before_the_prompt_index_exists_match_substrings(api: Any) -> None:
    """A table made before tables had a prompt index still answers keywords (until the owner builds the index)."""
    app = api.server.app
    app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="old", display_name="O", folders=["/old"])))
    table = app[STORE].create("old", TableInfo(model="ViT-B-32", pretrained="none", dim=4))
    table._table.drop_index("positive_prompt_idx")  # what an older table looks like
    vector = [0.5, 0.5, 0.5, 0.5]
    table.upsert([
        {"id": 1, "path": "/old/1.png", "folder": "/old", "mtime_ns": 1, "size": 1, "width": 1, "height": 1,
         "vector": vector, "positive_prompt": "An Old Castle at night"},
        {"id": 2, "path": "/old/2.png", "folder": "/old", "mtime_ns": 1, "size": 1, "width": 1, "height": 1,
         "vector": vector, "positive_prompt": "a castle in spring"},
    ])  # fmt: skip
    assert not table.has_fts_index()
    page = await search(api, {"keywords": "castle night"}, key="old")
    assert [hit["id"] for hit in page["results"]] == [1]
    table.ensure_fts_index()
    assert table.has_fts_index()
    assert [hit["id"] for hit in (await search(api, {"keywords": "castle night"}, key="old"))["results"]] == [1]


async def test_starred_cluster_and_selection_filters(api: Any, fixtures_album: dict[str, int]) -> None:
    table = api.server.app[STORE].open("real")
    star, other = fixtures_album["novelai-01-cropped.png"], fixtures_album["plain-nometa.jpg"]
    table.update_columns([{"id": star, "starred": True}])
    table.update_columns([{"id": other, "cluster": 7}])
    starred = await search(api, {"filters": {"starred": True}})
    assert [hit["id"] for hit in starred["results"]] == [star]
    assert (await search(api, {"filters": {"starred": False}}))["total"] == len(fixtures_album) - 1
    assert [hit["id"] for hit in (await search(api, {"filters": {"cluster": 7}}))["results"]] == [other]
    table.update_columns([{"id": star, "cluster": 9}])  # a map label drawn once for clusters 7 and 9 asks for both
    merged = await search(api, {"filters": {"cluster": [9, 7]}})
    assert {hit["id"] for hit in merged["results"]} == {star, other}
    assert (await search(api, {"filters": {"cluster": []}}))["total"] == 0
    for bad in ([-2], list(range(1_001)), ["seven"]):
        refused = await api.post("/api/v1/albums/real/search", json={"filters": {"cluster": bad}})
        assert refused.status == 422 and "error" in await refused.json(), bad
    chosen = await search(api, {"filters": {"ids": [star, other, 10**12]}})  # "open in grid": unknown ids drop out
    assert {hit["id"] for hit in chosen["results"]} == {star, other}
    assert (await search(api, {"filters": {"ids": []}}))["total"] == 0
    too_many = await api.post("/api/v1/albums/real/search", json={"filters": {"ids": list(range(10_001))}})
    assert too_many.status == 422
