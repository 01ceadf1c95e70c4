"""The one decoder, on real files: each format, EXIF orientation, reduced JPEG decodes, modes, hostile input."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photomapd import images
from photomapd.errors import ImageUnreadable
from tests.daemon.images import make_bomb_png, make_png, make_truncated_png

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
# The one WebP is made from a fixture (the corpus holds PNG and JPEG only).
WEBP_SOURCE = FIXTURES / "comfyui-02.png"


def saved(path: Path, image: Image.Image, fmt: str, **params: object) -> Path:
    image.save(path, fmt, **params)
    return path


def pillow_allocations() -> int:
    """Image buffers Pillow has created in this process: a refused file must not add one."""
    Image.init()  # registering Pillow's plugins makes one image of its own: not ours to count
    return int(Image.core.get_stats()["new_count"])


@pytest.mark.parametrize("name", ["invokeai-6.10.0-metadata-graph.png", "plain-nometa.jpg", "webp"])
def test_each_fixture_format_decodes_to_rgb(tmp_path: Path, name: str) -> None:
    if name == "webp":
        with Image.open(WEBP_SOURCE) as source:
            path = saved(tmp_path / "fixture.webp", source, "WEBP", quality=90)
    else:
        path = FIXTURES / name
    with Image.open(path) as reference:
        declared = reference.size
        expected = np.asarray(reference.convert("RGB"))
    loaded = images.load_image(path)
    assert loaded.image.mode == "RGB"
    assert (loaded.width, loaded.height) == loaded.image.size == declared
    assert np.array_equal(np.asarray(loaded.image), expected)
    from_bytes = images.load_image(path.read_bytes())
    assert np.array_equal(np.asarray(from_bytes.image), expected)


def test_exif_orientation_is_applied_and_the_declared_size_kept(tmp_path: Path) -> None:
    stored = Image.new("RGB", (200, 100), "red")
    stored.paste(Image.new("RGB", (100, 100), "blue"), (100, 0))  # left half red, right half blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": the stored left edge becomes the top
    path = saved(tmp_path / "rotated.jpg", stored, "JPEG", quality=95, exif=exif.tobytes())
    loaded = images.load_image(path)
    assert loaded.image.size == (100, 200)
    assert (loaded.width, loaded.height) == (200, 100)
    top, bottom = loaded.image.getpixel((50, 40)), loaded.image.getpixel((50, 160))
    assert top[0] > 200 and top[2] < 60  # red
    assert bottom[2] > 200 and bottom[0] < 60  # blue


def test_a_jpeg_decodes_reduced_only_as_far_as_the_caller_allows(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    panorama = saved(tmp_path / "pano.jpg", Image.fromarray(rng.integers(0, 255, (1000, 4000, 3), np.uint8)), "JPEG")
    assert images.load_image(panorama).image.size == (4000, 1000)
    # Covering 448x448 (the embedder's crop) stops at 1/2: 1/4 would leave the short side at 250 px.
    covered = images.load_image(panorama, cover=(448, 448))
    assert covered.image.size == (2000, 500) and (covered.width, covered.height) == (4000, 1000)
    # Fitting a 768 px edge (a thumbnail's box x 3) goes to 1/4: the long side is still 1000 px.
    assert images.load_image(panorama, fit=768).image.size == (1000, 250)
    png = make_png(tmp_path / "big.png", 1, (1200, 900))
    assert images.load_image(png, cover=(448, 448)).image.size == (1200, 900)  # only JPEG has reduced decodes


@pytest.mark.parametrize(
    ("mode", "keep_alpha", "expected"),
    [("RGBA", False, "RGB"), ("RGBA", True, "RGBA"), ("LA", True, "RGBA"), ("L", True, "RGB"), ("P", False, "RGB")],
)
def test_pixels_come_out_rgb_or_rgba(tmp_path: Path, mode: str, keep_alpha: bool, expected: str) -> None:
    path = saved(tmp_path / "image.png", Image.new(mode, (40, 30)), "PNG")
    loaded = images.load_image(path, keep_alpha=keep_alpha)
    assert loaded.image.mode == expected and loaded.image.size == (40, 30)


def test_palette_transparency_is_kept_when_asked(tmp_path: Path) -> None:
    image = Image.new("P", (20, 20), 0)
    image.putpalette([255, 0, 0, 0, 0, 255])
    path = saved(tmp_path / "transparent.png", image, "PNG", transparency=0)
    kept = images.load_image(path, keep_alpha=True).image
    assert kept.mode == "RGBA" and kept.getpixel((5, 5))[3] == 0


def test_sixteen_bit_grey_keeps_its_brightness(tmp_path: Path) -> None:
    path = saved(tmp_path / "grey16.png", Image.new("I;16", (16, 16), 40_000), "PNG")  # 61% grey
    pixel = images.load_image(path).image.getpixel((3, 3))
    assert 140 < pixel[0] < 170 and pixel[0] == pixel[1] == pixel[2]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(("width", "height"), [(13_000, 13_000), (40_000, 40_000)])
def test_a_huge_declared_size_is_refused_before_any_pixel_buffer(tmp_path: Path, width: int, height: int) -> None:
    bomb = make_bomb_png(tmp_path / "bomb.png", width, height)
    assert bomb.stat().st_size < 20_000 and width * height > images.MAX_IMAGE_PIXELS
    before = pillow_allocations()
    for source in (bomb, bomb.read_bytes()):
        with pytest.raises(ImageUnreadable, match="too large") as refused:
            images.load_image(source)
    assert pillow_allocations() == before  # without the cap, Pillow creates the 13000x13000 buffer, then fails
    if width == 13_000:  # under Pillow's own limit: our cap is what refused it, and the message says why
        assert "13000x13000" in refused.value.message and f"{images.MAX_IMAGE_PIXELS:,}" in refused.value.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns from 89 MP; we decide
def test_the_largest_camera_frames_still_decode(tmp_path: Path) -> None:
    # A 151 MP medium-format frame (Phase One IQ4) is under the cap; a flat JPEG keeps the file small.
    path = saved(tmp_path / "flat.jpg", Image.new("L", (14_204, 10_652), 128), "JPEG", quality=50)
    loaded = images.load_image(path, cover=(448, 448))
    assert (loaded.width, loaded.height) == (14_204, 10_652)
    assert loaded.image.size == (1776, 1332)  # 1/8 scale: the reduced decode keeps this cheap


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_truncated_file_is_refused_with_the_reason(tmp_path: Path, kind: str) -> None:
    if kind == "png":
        path = make_truncated_png(tmp_path / "cut.png")
    else:
        noise = np.random.default_rng(5).integers(0, 255, (200, 300, 3), np.uint8)
        whole = saved(tmp_path / "whole.jpg", Image.fromarray(noise), "JPEG")
        path = tmp_path / "cut.jpg"
        path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageUnreadable, match="truncated"):
        images.load_image(path)
    with pytest.raises(ImageUnreadable, match="truncated"):
        images.load_image(path.read_bytes())


def test_damaged_pixel_data_is_refused(tmp_path: Path) -> None:
    data = bytearray(make_png(tmp_path / "ok.png", 7, (64, 64)).read_bytes())
    idat = data.index(b"IDAT") + 4
    data[idat : idat + 200] = bytes(200)  # zeroes over the start of the compressed stream
    with pytest.raises(ImageUnreadable, match="damaged and cannot be decoded"):
        images.load_image(bytes(data))


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"this is text, not a JPEG", "cannot decode"), (b"\x89PNG\r\n\x1a\n garbage", "cut short")],
)
def test_empty_broken_and_non_image_input_is_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "fake.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageUnreadable, match=reason):
        images.load_image(path)
    with pytest.raises(ImageUnreadable, match=reason):
        images.load_image(content)


@pytest.mark.parametrize("fmt", ["PPM", "TGA", "ICO"])
def test_formats_outside_the_photo_list_are_refused_unread(tmp_path: Path, fmt: str) -> None:
    path = saved(tmp_path / f"image.{fmt.lower()}", Image.new("RGB", (32, 32), "red"), fmt)
    with Image.open(path) as image:  # Pillow itself would decode it
        assert image.format == fmt
    with pytest.raises(ImageUnreadable, match="cannot decode"):
        images.load_image(path)


def test_a_missing_file_stays_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        images.load_image(tmp_path / "gone.png")


def test_a_directory_is_refused_readably(tmp_path: Path) -> None:
    with pytest.raises(ImageUnreadable, match="cannot be opened"):
        images.load_image(tmp_path)


def test_uploaded_webp_bytes_decode_upright() -> None:
    out = io.BytesIO()
    Image.new("RGB", (30, 20), "white").save(out, "WEBP")
    assert images.load_image(out.getvalue()).image.size == (30, 20)
