from __future__ import annotations

import os
from pathlib import Path

from photomapd.index.scan import FileStat, diff_index, is_in_album, scan_folders, stat_paths
from photomapd.store import StatRow


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_scan_finds_images_recursively_and_skips_hidden_and_thumbnails(tmp_path: Path) -> None:
    root = tmp_path / "outputs" / "images"
    keep = [_touch(root / "a.png"), _touch(root / "sub" / "b.JPG"), _touch(root / "sub" / "ü ñ.webp")]
    _touch(root / ".hidden.png")
    _touch(root / ".cache" / "c.png")
    _touch(root / "thumbnails" / "a.webp")
    _touch(root / "notes.txt")
    found = {f.path for f in scan_folders([str(root)])}
    assert found == {str(p) for p in keep}


def test_overlapping_folders_list_a_file_once(tmp_path: Path) -> None:
    _touch(tmp_path / "x" / "y" / "a.png")
    found = list(scan_folders([str(tmp_path / "x"), str(tmp_path / "x" / "y")]))
    assert len(found) == 1


def test_diff_sorts_new_changed_removed_unchanged() -> None:
    indexed = {
        "/a.png": StatRow(1, 100, 10),
        "/b.png": StatRow(2, 100, 10),
        "/c.png": StatRow(3, 100, 10),
        "/d.png": StatRow(4, 100, 10),
    }
    scanned = [
        FileStat("/a.png", "/", 100, 10),  # unchanged
        FileStat("/b.png", "/", 200, 10),  # touched: new mtime
        FileStat("/c.png", "/", 100, 11),  # same mtime, new size
        FileStat("/e.png", "/", 100, 10),  # new
    ]
    diff = diff_index(scanned, indexed)
    assert [f.path for f in diff.new] == ["/e.png"]
    assert sorted((f.path, row_id) for f, row_id in diff.changed) == [("/b.png", 2), ("/c.png", 3)]
    assert diff.removed == [4]
    assert diff.unchanged == 1


def test_partial_diff_removes_only_within_scope() -> None:
    indexed = {"/a.png": StatRow(1, 1, 1), "/b.png": StatRow(2, 1, 1)}
    diff = diff_index([], indexed, scope={"/a.png", "/zzz.png"})
    assert diff.removed == [1]


def test_stat_paths_drops_vanished_and_foreign_files(tmp_path: Path) -> None:
    root = tmp_path / "album"
    present = _touch(root / "a.png")
    outside = _touch(tmp_path / "elsewhere" / "b.png")
    thumb = _touch(root / "thumbnails" / "t.png")
    stats = list(stat_paths([str(present), str(root / "gone.png"), str(outside), str(thumb)], [str(root)]))
    assert [s.path for s in stats] == [str(present)]
    assert stats[0].folder == str(root)
    assert is_in_album(str(present), [str(root)])
    assert not is_in_album(str(root) + "-other/a.png", [str(root)])
    os.remove(present)
    assert list(stat_paths([str(present)], [str(root)])) == []
