"""Thumbnails from real image files: size, cache, regeneration on change, orientation, hostile files."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image

from photomapd import config, thumbs
from photomapd.errors import ImageUnreadable
from tests.daemon.images import make_bomb_png, make_truncated_png


def write_image(path: Path, size: tuple[int, int], color: str = "red", mode: str = "RGB", fmt: str = "PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, fmt)
    return path


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_thumbnail_fits_256_px_and_keeps_the_aspect(tmp_path: Path) -> None:
    source = write_image(tmp_path / "wide.png", (1000, 500))
    data, stamp = thumbs.thumbnail("album", 7, source)
    image = decoded(data)
    assert image.format == "WEBP"
    assert image.size == (256, 128)
    assert stamp == thumbs.FileStamp.of(source)


def test_small_images_are_not_enlarged(tmp_path: Path) -> None:
    data, _ = thumbs.thumbnail("album", 1, write_image(tmp_path / "small.png", (40, 30)))
    assert decoded(data).size == (40, 30)


def test_second_request_is_served_from_the_cache(tmp_path: Path) -> None:
    source = write_image(tmp_path / "a.png", (300, 300))
    first, stamp = thumbs.thumbnail("album", 3, source)
    cached = thumbs.thumb_path("album", 3, stamp)
    assert cached.read_bytes() == first
    assert cached.is_relative_to(config.thumbs_dir())
    cached.write_bytes(b"marker")  # served as-is while the source is unchanged, so this must come back
    assert thumbs.thumbnail("album", 3, source)[0] == b"marker"


def test_changed_file_gets_a_new_thumbnail_and_the_old_one_is_dropped(tmp_path: Path) -> None:
    source = write_image(tmp_path / "a.png", (300, 300), color="red")
    _, old_stamp = thumbs.thumbnail("album", 3, source)
    write_image(source, (300, 150), color="blue")
    os.utime(source, ns=(old_stamp.mtime_ns + 10**9, old_stamp.mtime_ns + 10**9))
    data, new_stamp = thumbs.thumbnail("album", 3, source)
    assert new_stamp != old_stamp and new_stamp.etag != old_stamp.etag
    assert decoded(data).size == (256, 128)
    assert not thumbs.thumb_path("album", 3, old_stamp).exists()
    assert thumbs.thumb_path("album", 3, new_stamp).exists()


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    source = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.new("RGB", (200, 100), "green").save(source, "JPEG", exif=exif.tobytes())
    data, _ = thumbs.thumbnail("album", 9, source)
    assert decoded(data).size == (100, 200)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "I;16"])
def test_any_pixel_mode_renders(tmp_path: Path, mode: str) -> None:
    source = tmp_path / f"{mode.replace(';', '')}.png"
    Image.new(mode, (64, 64)).save(source, "PNG")
    assert decoded(thumbs.thumbnail("album", 2, source)[0]).size == (64, 64)


def test_a_huge_pixel_count_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = make_bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageUnreadable, match="too large"):
        thumbs.thumbnail("album", 4, bomb)
    assert not (config.thumbs_dir() / "album").exists()


@pytest.mark.parametrize("content", [b"", b"not an image at all", None])
def test_unreadable_files_raise_a_readable_error(tmp_path: Path, content: bytes | None) -> None:
    broken = tmp_path / "broken.png"
    if content is None:
        make_truncated_png(broken)
    else:
        broken.write_bytes(content)
    with pytest.raises(ImageUnreadable):
        thumbs.thumbnail("album", 5, broken)


def test_transparency_survives_in_the_thumbnail(tmp_path: Path) -> None:
    image = Image.new("RGBA", (600, 300), (255, 0, 0, 255))
    image.paste((0, 0, 0, 0), (0, 0, 300, 300))  # left half fully transparent
    image.save(tmp_path / "alpha.png")
    thumb = decoded(thumbs.thumbnail("album", 6, tmp_path / "alpha.png")[0])
    assert thumb.mode == "RGBA" and thumb.size == (256, 128)
    assert thumb.getpixel((20, 64))[3] == 0 and thumb.getpixel((236, 64))[3] == 255


def test_a_camera_sized_jpeg_keeps_its_aspect(tmp_path: Path) -> None:
    source = write_image(tmp_path / "photo.jpg", (4000, 3000), color="blue", fmt="JPEG")
    data, _ = thumbs.thumbnail("album", 8, source)
    assert decoded(data).size == (256, 192)


def test_a_vanished_file_is_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        thumbs.render_thumbnail(tmp_path / "gone.png")


def test_forget_album_removes_its_thumbnails(tmp_path: Path) -> None:
    source = write_image(tmp_path / "a.png", (50, 50))
    thumbs.thumbnail("gone", 1, source)
    thumbs.forget_album("gone")
    assert not (config.thumbs_dir() / "gone").exists()
    thumbs.forget_album("never-existed")
