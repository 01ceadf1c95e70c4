"""`/images/{album}/{id}/thumb` and `/file` over a real loopback server: caching headers, 304s, and path tricks."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from photomapd.api.keys import CONFIG, STORE
from photomapd.config import AlbumConfig
from photomapd.store import AlbumTable, TableInfo
from tests.daemon.images import make_png

DIM = 8


def _row(row_id: int, path: Path, folder: Path) -> dict[str, Any]:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[row_id % DIM] = 1.0
    stat = path.stat() if path.exists() else None
    return {"id": row_id, "path": str(path), "folder": str(folder), "mtime_ns": stat.st_mtime_ns if stat else 0,
            "size": stat.st_size if stat else 0, "width": 96, "height": 96, "vector": vector.tolist()}  # fmt: skip


@pytest.fixture
def album_dir(tmp_path: Path) -> Path:
    return tmp_path / "photos"


@pytest.fixture
async def album(api: Any, album_dir: Path, tmp_path: Path) -> AlbumTable:
    """Rows 1-2: real PNGs in the album; 3: a file outside it; 4: a symlink in the album pointing outside;
    5: a file since deleted; 6: a symlink pointing at row 1's file (inside: allowed)."""
    inside = make_png(album_dir / "a.png", 1, (400, 200))
    make_png(album_dir / "sub" / "b.png", 2)
    secret = make_png(tmp_path / "elsewhere" / "secret.png", 3)
    (album_dir / "escape.png").symlink_to(secret)
    (album_dir / "alias.png").symlink_to(inside)
    paths = [inside, album_dir / "sub" / "b.png", secret, album_dir / "escape.png", album_dir / "gone.png",
             album_dir / "alias.png"]  # fmt: skip
    app = api.server.app
    app[CONFIG].update(
        lambda cfg: cfg.albums.append(AlbumConfig(key="pics", display_name="Pics", folders=[str(album_dir)]))
    )
    table = app[STORE].create("pics", TableInfo(model="m", pretrained="none", dim=DIM))
    table.upsert([_row(i + 1, path, album_dir) for i, path in enumerate(paths)])
    return table


async def test_thumb_is_a_small_webp_with_cache_headers(api: Any, album: AlbumTable) -> None:
    response = await api.get("/api/v1/images/pics/1/thumb")
    assert response.status == 200
    assert response.content_type == "image/webp"
    assert "max-age" in response.headers["Cache-Control"]
    image = Image.open(io.BytesIO(await response.read()))
    assert image.format == "WEBP" and image.size == (256, 128)


async def test_thumb_answers_304_until_the_file_changes(api: Any, album: AlbumTable, album_dir: Path) -> None:
    etag = (await api.get("/api/v1/images/pics/1/thumb")).headers["ETag"]
    again = await api.get("/api/v1/images/pics/1/thumb", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""
    source = album_dir / "a.png"
    make_png(source, 9, (100, 300))
    later = source.stat().st_mtime_ns + 10**9
    os.utime(source, ns=(later, later))
    changed = await api.get("/api/v1/images/pics/1/thumb", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert Image.open(io.BytesIO(await changed.read())).size == (85, 256)


async def test_file_is_served_by_row_id_with_type_and_etag(api: Any, album: AlbumTable, album_dir: Path) -> None:
    response = await api.get("/api/v1/images/pics/2/file")
    assert response.status == 200 and response.content_type == "image/png"
    assert await response.read() == (album_dir / "sub" / "b.png").read_bytes()
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    again = await api.get("/api/v1/images/pics/2/file", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status == 304


async def test_symlink_inside_the_album_is_served(api: Any, album: AlbumTable, album_dir: Path) -> None:
    response = await api.get("/api/v1/images/pics/6/file")
    assert response.status == 200 and await response.read() == (album_dir / "a.png").read_bytes()


@pytest.mark.parametrize("row_id", [3, 4])  # a row pointing outside; a symlink in the album pointing outside
@pytest.mark.parametrize("kind", ["file", "thumb"])
async def test_files_outside_the_album_folders_are_refused(api: Any, album: AlbumTable, row_id: int, kind: str) -> None:
    response = await api.get(f"/api/v1/images/pics/{row_id}/{kind}")
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "file_outside_album"


async def test_a_folder_swapped_for_a_symlink_is_refused(api: Any, album: AlbumTable, album_dir: Path, tmp_path: Path) -> None:
    sub = album_dir / "sub"
    moved = tmp_path / "moved-out"
    sub.rename(moved)
    sub.symlink_to(moved)  # the row's path still reads photos/sub/b.png, but it now resolves outside the album
    response = await api.get("/api/v1/images/pics/2/file")
    assert response.status == 404 and (await response.json())["error"]["code"] == "file_outside_album"


async def test_deleted_file_is_a_clear_404(api: Any, album: AlbumTable) -> None:
    for kind in ("file", "thumb"):
        response = await api.get(f"/api/v1/images/pics/5/{kind}")
        assert response.status == 404 and (await response.json())["error"]["code"] == "file_missing"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/images/pics/99/file",
        "/api/v1/images/pics/-1/file",
        "/api/v1/images/pics/1.0/file",
        "/api/v1/images/pics/..%2F..%2Fetc%2Fpasswd/file",
        "/api/v1/images/pics/%2Fetc%2Fpasswd/thumb",
        "/api/v1/images/pics/99999999999999999999999/thumb",
        "/api/v1/images/nope/1/file",
        "/api/v1/images/..%2Fpics/1/file",
    ],
)
async def test_anything_but_a_known_row_id_is_404(api: Any, album: AlbumTable, url: str) -> None:
    response = await api.get(url)
    assert response.status == 404
    assert (await response.read()) != (Path(album.get(1, ["path"])["path"])).read_bytes()


async def test_undecodable_file_gets_a_readable_error(api: Any, album: AlbumTable, album_dir: Path) -> None:
    (album_dir / "a.png").write_bytes(b"this is no png")
    response = await api.get("/api/v1/images/pics/1/thumb")
    assert response.status == 422 and (await response.json())["error"]["code"] == "image_unreadable"


async def test_thumb_needs_the_token(api: Any, album: AlbumTable) -> None:
    response = await api.get("/api/v1/images/pics/1/thumb", headers={"Authorization": "Bearer wrong"})
    assert response.status == 401
