"""Hostile numbers, names, folders and damaged files through the real API (DESIGN §13): a 4xx JSON error or a skipped
file with a reason, never a 500 or a failed run; a damaged vector never reaches JSON and heals by itself."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from photomapd import config
from photomapd.api.keys import STORE

from tests.daemon.api.test_album_routes import read_sse
from tests.daemon.images import make_album

INT64_OVER = 2**63
RUN_TIMEOUT_S = 300.0


async def indexed_album(api: Any, folder: Path, key: str = "pics") -> dict[str, Any]:
    resp = await api.post("/api/v1/albums", json={"key": key, "display_name": key, "folders": [str(folder)]})
    assert resp.status == 201, await resp.text()
    final = (await asyncio.wait_for(read_sse(api, key), RUN_TIMEOUT_S))[-1]
    assert final["state"] == "done", final
    return final


async def assert_json_error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    return body["error"]


async def test_odd_numbers_get_a_json_4xx_not_a_500(api: Any, tmp_path: Path) -> None:
    make_album(tmp_path / "images", 3)
    await indexed_album(api, tmp_path / "images")
    for raw_id in ("%C2%B2", "١٢", str(INT64_OVER), "-1", "1e3"):  # superscript two, Arabic-Indic digits, past int64
        await assert_json_error(await api.get(f"/api/v1/images/pics/{raw_id}"), 404)
    search = "/api/v1/albums/pics/search"
    await assert_json_error(await api.post(search, json={"image_id": INT64_OVER}), 422)
    await assert_json_error(await api.post(search, json={"filters": {"seed": INT64_OVER}}), 422)
    await assert_json_error(await api.post(search, json={"filters": {"seed": -INT64_OVER - 1}}), 422)
    last_day = await api.post(search, json={"filters": {"date_to": "9999-12-31", "date_from": "0001-01-01"}})
    assert last_day.status == 200, await last_day.text()
    await assert_json_error(await api.post(search, json={"filters": {"date_to": "9999-12-31T23:00:00-05:00"}}), 400)


async def test_album_folders_may_not_be_the_disk_the_home_dir_or_photomaps_own(api: Any, tmp_path: Path) -> None:
    for folder, expected in (
        ("/", "whole disk"),
        (str(Path.home()), "home folder"),
        (str(config.data_dir().parent), "photomap's own files"),  # holds the data dir
        (str(config.cache_dir()), "photomap's own files"),
    ):
        Path(folder).mkdir(parents=True, exist_ok=True)
        resp = await api.post("/api/v1/albums", json={"key": "bad", "display_name": "Bad", "folders": [folder]})
        error = await assert_json_error(resp, 422)
        assert expected in error["message"].lower(), (folder, error)
    assert await (await api.get("/api/v1/albums")).json() == []


@pytest.mark.skipif(os.uname().sysname == "Darwin", reason="macOS refuses file names that are not UTF-8")
async def test_a_file_name_that_is_not_utf8_is_skipped_with_a_reason_and_the_run_goes_on(api: Any, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    make_album(folder, 3)
    (folder / "img_0000.png").rename(os.fsdecode(bytes(folder) + b"/caf\xe9-latin1.png"))  # a name from an old disk
    final = await indexed_album(api, folder)
    assert final["skipped_count"] == 1
    skipped = final["skipped"][0]
    assert "UTF-8" in skipped["reason"] and "\\xe9" in skipped["path"]
    albums = await (await api.get("/api/v1/albums")).json()
    assert albums[0]["indexed_count"] == 2
    again = await api.post("/api/v1/albums/pics/index", json={})
    assert again.status == 202
    assert (await read_sse(api, "pics"))[-1]["state"] == "done", "later runs go on too"


def scramble_one_vector(table: Any, row_id: int) -> None:
    """What a bad disk block does: overwrite one row's vector bytes in the LanceDB data file with NaN patterns."""
    _, vectors = table.vectors(f"id = {row_id}")
    needle = vectors[0].astype("<f4").tobytes()
    hits = 0
    for data_file in (config.index_dir() / f"{table.name}.lance" / "data").iterdir():  # old versions' files too
        content = data_file.read_bytes()
        hits += content.count(needle)
        data_file.write_bytes(content.replace(needle, b"\xff\xff\xff\x7f" * (len(needle) // 4)))
    assert hits, "vector bytes not found in the table's data files"


async def test_a_damaged_vector_never_reaches_json_and_the_album_heals(api: Any, tmp_path: Path) -> None:
    make_album(tmp_path / "images", 4)
    await indexed_album(api, tmp_path / "images")
    store = api.server.app[STORE]
    table = store.open("pics")
    assert table is not None
    scramble_one_vector(table, 2)
    store._tables.clear()  # the daemon reopens the table as it would after a restart (the page cache is gone)

    resp = await api.post("/api/v1/albums/pics/search", json={"text": "a photo", "limit": 10})
    assert resp.status == 200
    text = await resp.text()
    page = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))
    assert [hit["id"] for hit in page["results"] if hit["id"] == 2] == []
    assert all(np.isfinite(hit["score"]) for hit in page["results"])

    deadline = time.monotonic() + RUN_TIMEOUT_S  # the owner repairs the table and re-embeds the file by itself
    while True:
        healed = store.open("pics")
        if healed is not None and healed.count() == 4:
            _, vectors = healed.vectors()
            if np.isfinite(vectors).all():
                break
        assert time.monotonic() < deadline, "the damaged row was not re-embedded"
        await asyncio.sleep(0.2)
    page = await (await api.post("/api/v1/albums/pics/search", json={"text": "a photo", "limit": 10})).json()
    assert len(page["results"]) == 4
