"""Album routes end to end on a real loopback server: add → first index → SSE progress to 100 % → image record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from photomapd import config

from tests.daemon.images import make_album

FIXTURES = Path(__file__).parents[2] / "fixtures" / "images"


async def read_sse(api: Any, key: str) -> list[dict[str, Any]]:
    """Every `progress` event of the album's stream until it ends (after a finished run)."""
    resp = await api.get(f"/api/v1/albums/{key}/progress")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    events = []
    async for raw in resp.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            events.append(json.loads(line[len("data: ") :]))
    return events


async def test_add_album_indexes_and_streams_progress_to_completion(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "outputs" / "images"
    make_album(folder, 5)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    (folder / "invokeai.png").write_bytes((FIXTURES / "invokeai-6.10.0-metadata-graph.png").read_bytes())

    resp = await api.post("/api/v1/albums", json={"key": "gallery", "display_name": "My Gallery", "folders": [str(folder)]})
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["key"] == "gallery" and body["folders"] == [str(folder)]

    events = await read_sse(api, "gallery")
    final = events[-1]
    assert final["state"] == "done", final
    assert final["done"] == final["total"] == 7
    assert final["skipped_count"] == 1 and final["skipped"][0]["path"].endswith("broken.png")
    assert any(e["phase"] == "embedding" for e in events) or len(events) == 1

    albums = await (await api.get("/api/v1/albums")).json()
    assert albums[0]["indexed_count"] == 6
    assert albums[0]["progress"]["state"] == "done"

    search = await api.post("/api/v1/albums/gallery/search", json={"filters": {"generator": "invokeai"}})
    hits = (await search.json())["results"]
    assert len(hits) == 1
    image = await (await api.get(f"/api/v1/images/gallery/{hits[0]['id']}")).json()
    assert image["metadata"]["generator"] == "invokeai"
    assert image["metadata"]["model"]["name"] == "waiIllustriousSDXL_v160"
    assert image["metadata"]["raw"], "the raw chunks come along for 'View full metadata'"

    resp = await api.post("/api/v1/albums/gallery/index", json={"mode": "update"})
    assert resp.status == 202
    final = (await read_sse(api, "gallery"))[-1]
    assert (final["state"], final["new"], final["unchanged"]) == ("done", 1, 6)  # the broken file is retried


async def test_album_validation_errors_are_clear(api: Any, tmp_path: Path) -> None:
    cases = [
        ({"key": "Bad Key", "display_name": "x", "folders": [str(tmp_path)]}, "not valid"),
        ({"key": "ok", "display_name": "x", "folders": []}, "at least one"),
        ({"key": "ok", "display_name": "x", "folders": [str(tmp_path / "missing")]}, "does not exist"),
        ({"key": "ok", "display_name": "x", "folders": ["relative/dir"]}, "absolute"),
        ({"key": "ok", "display_name": "x", "folders": [str(tmp_path)], "extra": 1}, "extra"),
    ]
    for payload, expected in cases:
        resp = await api.post("/api/v1/albums", json=payload)
        assert resp.status == 422, payload
        assert expected in (await resp.json())["error"]["message"].lower() or expected in (await resp.text())


async def test_unknown_album_and_image_are_404(api: Any, tmp_path: Path) -> None:
    assert (await api.post("/api/v1/albums/nope/index", json={})).status == 404
    assert (await api.get("/api/v1/images/nope/1")).status == 404
    assert (await api.delete("/api/v1/albums/nope")).status == 404


async def test_delete_album_drops_its_index(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "pics"
    make_album(folder, 2)
    assert (await api.post("/api/v1/albums", json={"key": "pics", "display_name": "Pics", "folders": [str(folder)]})).status == 201
    await read_sse(api, "pics")
    assert (await api.get("/api/v1/images/pics/1/thumb")).status == 200
    thumbs_dir = config.thumbs_dir() / "pics"
    assert any(thumbs_dir.iterdir())
    resp = await api.delete("/api/v1/albums/pics")
    assert resp.status == 204
    assert await (await api.get("/api/v1/albums")).json() == []
    assert (await api.get("/api/v1/images/pics/1")).status == 404
    assert all(p.exists() for p in folder.iterdir()), "image files are never touched"
    assert not thumbs_dir.exists() or not any(thumbs_dir.iterdir()), "its thumbnails are gone too"
