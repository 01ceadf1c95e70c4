"""`/albums/{key}/search` and `/duplicates` over a real loopback server with a real LanceDB table.

Two tests use the real open_clip model (random weights, as configured by `serve_options`); the rest use stored vectors.
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photomapd.api.keys import CONFIG, EMBEDDER, STORE
from photomapd.config import AlbumConfig
from photomapd.store import AlbumTable, TableInfo
from tests.daemon.images import make_png

DIM = 512  # ViT-B-32's: text and uploads are embedded by the daemon's own model
WORDS = ["a red fox in snow", "a blue whale", "an old castle at night", "a bowl of ramen"]


def _row(row_id: int, vector: np.ndarray, **columns: Any) -> dict[str, Any]:
    return {"id": row_id, "path": f"/pics/{row_id}.png", "folder": "/pics", "mtime_ns": 1, "size": 1, "width": 64,
            "height": 32, "vector": vector.tolist(), **columns}  # fmt: skip


def _unit_rows(count: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def _album(api: Any, rows: list[dict[str, Any]], model: str = "ViT-B-32") -> AlbumTable:
    app = api.server.app
    app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="pics", display_name="Pics", folders=["/pics"])))
    table = app[STORE].create("pics", TableInfo(model=model, pretrained="none", dim=DIM))
    table.upsert(rows)
    return table


@pytest.fixture
async def vectors_album(api: Any) -> np.ndarray:
    vectors = _unit_rows(60, 1)
    start = datetime(2024, 3, 1)
    await _album(api, [
        _row(i + 1, vectors[i], created_at=start + timedelta(days=i), model="sdxl" if i < 30 else "flux",
             generator="invokeai", positive_prompt=f"prompt {i} " + "x" * 300)
        for i in range(60)
    ])  # fmt: skip
    return vectors


async def search(api: Any, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    response = await api.post("/api/v1/albums/pics/search", json=body)
    assert response.status == status, await response.text()
    return await response.json()


async def test_more_like_this_ranks_the_image_itself_first(api: Any, vectors_album: np.ndarray) -> None:
    page = await search(api, {"image_id": 17, "limit": 5})
    assert [hit["id"] for hit in page["results"]][0] == 17
    assert page["results"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    expected = (np.argsort(-(vectors_album @ vectors_album[16]))[:5] + 1).tolist()
    assert [hit["id"] for hit in page["results"]] == expected
    assert set(page["results"][0]) == {"id", "name", "score", "width", "height", "created_at", "generator", "model",
                                       "positive_prompt", "starred"}  # fmt: skip
    assert page["results"][0]["name"] == "17.png"  # the file's name, for alt texts and the map's tooltip
    assert len(page["results"][0]["positive_prompt"]) == 200
    assert (page["total"], page["offset"], page["limit"]) == (60, 0, 5)


async def test_filters_sort_and_paging(api: Any, vectors_album: np.ndarray) -> None:
    page = await search(api, {"image_id": 3, "filters": {"model": "flux"}, "sort": "date", "offset": 2, "limit": 3})
    assert page["total"] == 30
    assert [hit["id"] for hit in page["results"]] == [58, 57, 56]
    assert all(hit["model"] == "flux" for hit in page["results"])


async def test_min_score_cutoff(api: Any, vectors_album: np.ndarray) -> None:
    page = await search(api, {"image_id": 3, "min_score": 0.5})
    assert [hit["id"] for hit in page["results"]] == [3] and page["total"] == 1


async def test_no_query_browses_newest_first(api: Any, vectors_album: np.ndarray) -> None:
    page = await search(api, {"filters": {"date_from": "2024-03-10", "date_to": "2024-03-12"}, "limit": 10})
    assert [hit["id"] for hit in page["results"]] == [12, 11, 10]
    assert all(hit["score"] is None for hit in page["results"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"text": "fox", "unknown": 1}, 422, "invalid_request"),
        ({"limit": 0}, 422, "invalid_request"),
        ({"limit": 100_000}, 422, "invalid_request"),
        ({"filters": {"path": "/etc"}}, 422, "invalid_request"),
        ({"image_id": 3, "image_base64": "AAAA"}, 422, "invalid_request"),
        ({"image_id": 999}, 404, "image_not_found"),
        ({"negative_text": "blurry"}, 400, "bad_request"),
        ({"image_base64": "%%% not base64"}, 400, "bad_request"),
    ],
)
async def test_bad_requests_get_clear_errors(api: Any, vectors_album: np.ndarray, body: dict, status: int, code: str) -> None:
    page = await search(api, body, status)
    assert page["error"]["code"] == code and page["error"]["message"]


async def test_non_json_body_is_refused(api: Any, vectors_album: np.ndarray) -> None:
    response = await api.post("/api/v1/albums/pics/search", data=b"{not json")
    assert response.status == 422


async def test_unknown_and_unindexed_albums(api: Any) -> None:
    response = await api.post("/api/v1/albums/nope/search", json={})
    assert response.status == 404
    api.server.app[CONFIG].update(lambda cfg: cfg.albums.append(AlbumConfig(key="new", display_name="N", folders=["/n"])))
    response = await api.post("/api/v1/albums/new/search", json={"text": "x"})
    assert response.status == 409 and (await response.json())["error"]["code"] == "not_indexed"


async def test_text_from_another_model_is_refused(api: Any) -> None:
    await _album(api, [_row(1, _unit_rows(1, 2)[0])], model="RN50")
    page = await search(api, {"text": "a fox"}, 409)
    assert page["error"]["code"] == "model_mismatch"
    assert (await search(api, {"image_id": 1}))["results"][0]["id"] == 1  # stored vectors still work


async def test_duplicates_route_groups_near_copies(api: Any) -> None:
    vectors = _unit_rows(40, 3)
    vectors[7] = vectors[3] + 0.001
    vectors[7] /= np.linalg.norm(vectors[7])
    await _album(api, [_row(i + 1, vectors[i]) for i in range(40)])
    response = await api.get("/api/v1/albums/pics/duplicates")
    body = await response.json()
    assert response.status == 200
    assert body["groups"] == [{"ids": [4, 8], "score": pytest.approx(1.0, abs=1e-3)}] and body["total"] == 1
    assert (await api.get("/api/v1/albums/pics/duplicates?threshold=0.1")).status == 422
    assert (await api.get("/api/v1/albums/pics/duplicates?bogus=1")).status == 422


# --- with the model (random weights) --------------------------------------------------------------------------------


async def test_text_and_negative_text_rank_by_the_models_vectors(api: Any) -> None:
    runner = api.server.app[EMBEDDER]
    word_vectors = await runner.run(lambda model, texts: model.encode_texts(texts), WORDS)
    await _album(api, [_row(i + 1, word_vectors[i]) for i in range(len(WORDS))])
    page = await search(api, {"text": WORDS[2], "auto_cut": False})  # every row ranked, none cut
    assert page["results"][0]["id"] == 3 and page["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)
    plain = {hit["id"]: hit["score"] for hit in page["results"]}
    pushed = await search(api, {"text": WORDS[2], "negative_text": WORDS[0], "negative_weight": 0.8, "auto_cut": False})
    assert {hit["id"]: hit["score"] for hit in pushed["results"]}[1] < plain[1]


async def test_uploaded_bytes_find_the_same_indexed_image(api: Any, tmp_path: Path) -> None:
    runner = api.server.app[EMBEDDER]
    files = [make_png(tmp_path / f"{seed}.png", seed) for seed in range(3)]
    decoded = [await runner.run(lambda model, path: model.decode_file(path), path) for path in files]
    vectors = await runner.run(lambda model, items: model.encode_pixels([d.pixels for d in items]), decoded)
    await _album(api, [_row(i + 1, vectors[i]) for i in range(3)])
    upload = base64.b64encode(files[1].read_bytes()).decode()
    page = await search(api, {"image_base64": upload, "limit": 3})
    assert page["results"][0]["id"] == 2 and page["results"][0]["score"] > 0.99
    blended = await search(api, {"image_base64": upload, "text": "noise", "image_weight": 0.9})
    assert blended["results"][0]["id"] == 2
    broken = await search(api, {"image_base64": base64.b64encode(b"not an image").decode()}, 422)
    assert broken["error"]["code"] == "image_unreadable"
