"""pick_decode_source on real InvokeAI-shaped output folders: PNGs with the WebP thumbnails InvokeAI writes."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from photomapd.images import load_image
from photomapd.index.sources import header_size, pick_decode_source
from tests.daemon.images import make_bomb_png, make_png, make_truncated_png

VIT_B_32 = (224, 224)
VIT_B_32_256 = (256, 256)


def generation(images: Path, name: str, size: tuple[int, int], subfolder: str = "", seed: int = 0) -> Path:
    """An output as InvokeAI saves it: the PNG, then its thumbnail fitted into a 256 px box, as WebP."""
    image = make_png(images / subfolder / f"{name}.png", seed, size)
    thumb_path = images / "thumbnails" / subfolder / f"{name}.webp"
    thumb_path.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(image) as full:
        thumb = full.copy()
    thumb.thumbnail((256, 256), Image.Resampling.BICUBIC)
    thumb.save(thumb_path)
    stat = image.stat()
    os.utime(thumb_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # written just after, as InvokeAI does
    return image


def test_a_square_generation_is_embedded_from_its_thumbnail_with_the_images_size(tmp_path: Path) -> None:
    image = generation(tmp_path / "outputs" / "images", "3f2a-gen", (512, 512))
    source = pick_decode_source(image, VIT_B_32)
    assert source.is_thumbnail
    assert source.path == tmp_path / "outputs" / "images" / "thumbnails" / "3f2a-gen.webp"
    assert source.original_size == (512, 512)
    assert load_image(source.path).image.size == (256, 256)  # what the decode pool then reads: a tenth of the pixels


def test_a_256_px_model_still_takes_a_square_thumbnail(tmp_path: Path) -> None:
    image = generation(tmp_path / "images", "sq", (1024, 1024))
    assert pick_decode_source(image, VIT_B_32_256).is_thumbnail
    assert not pick_decode_source(image, (288, 288)).is_thumbnail  # a bigger input than the thumbnail: the image


def test_a_widescreen_generation_decodes_the_image_because_its_thumbnail_is_too_short(tmp_path: Path) -> None:
    image = generation(tmp_path / "images", "wide", (1024, 576))  # 16:9 → a 256×144 thumbnail
    source = pick_decode_source(image, VIT_B_32)
    assert (source.path, source.is_thumbnail, source.original_size) == (image, False, None)


def test_a_thumbnail_older_than_its_image_is_not_used(tmp_path: Path) -> None:
    image = generation(tmp_path / "images", "edited", (512, 512))
    thumb = tmp_path / "images" / "thumbnails" / "edited.webp"
    stat = image.stat()
    os.utime(thumb, ns=(stat.st_atime_ns, stat.st_mtime_ns - 1_000_000_000))  # the image was re-saved later
    assert pick_decode_source(image, VIT_B_32).path == image
    assert pick_decode_source(image, VIT_B_32, image_mtime_ns=stat.st_mtime_ns - 2_000_000_000).is_thumbnail


def test_an_image_without_a_thumbnail_is_decoded_itself(tmp_path: Path) -> None:
    image = make_png(tmp_path / "images" / "lonely.png", 1, (512, 512))
    (tmp_path / "images" / "thumbnails").mkdir()
    assert pick_decode_source(image, VIT_B_32).path == image


def test_thumbnails_in_dated_subfolders_are_found(tmp_path: Path) -> None:
    images = tmp_path / "outputs" / "images"
    image = generation(images, "dated", (512, 512), subfolder="2025/06/30")
    source = pick_decode_source(image, VIT_B_32)
    assert source.path == images / "thumbnails" / "2025" / "06" / "30" / "dated.webp"


def test_a_thumbnail_of_another_shape_or_not_an_image_is_ignored(tmp_path: Path) -> None:
    images = tmp_path / "images"
    image = generation(images, "reused", (512, 512))
    Image.new("RGB", (256, 300)).save(images / "thumbnails" / "reused.webp")  # another image under the same name
    assert pick_decode_source(image, VIT_B_32).path == image
    (images / "thumbnails" / "reused.webp").write_bytes(b"not a webp at all")
    assert pick_decode_source(image, VIT_B_32).path == image


def test_only_pngs_use_thumbnails(tmp_path: Path) -> None:
    images = tmp_path / "images"
    generation(images, "photo", (512, 512))
    photo = images / "photo.jpg"
    Image.new("RGB", (512, 512)).save(photo)
    assert pick_decode_source(photo, VIT_B_32).path == photo


def test_a_broken_or_oversized_image_is_left_to_its_own_decode(tmp_path: Path) -> None:
    """The image's decode names the problem (too large, cut short) for the skipped list: no thumbnail may hide it."""
    images = tmp_path / "images"
    generation(images, "bomb", (512, 512))
    make_bomb_png(images / "bomb.png", 13_000, 13_000)  # over our 160 MP cap, under Pillow's own refusal at open
    os.utime(images / "thumbnails" / "bomb.webp", ns=(0, (images / "bomb.png").stat().st_mtime_ns + 1))
    assert pick_decode_source(images / "bomb.png", VIT_B_32).path == images / "bomb.png"


def test_header_size_reads_the_declared_size_without_decoding(tmp_path: Path) -> None:
    # A truncated file still declares 128×128; a bomb declares 13000² over a few bytes: decoding either would fail
    assert header_size(make_truncated_png(tmp_path / "cut.png")) == (128, 128)
    assert header_size(make_bomb_png(tmp_path / "bomb.png", 13_000, 13_000)) == (13_000, 13_000)
