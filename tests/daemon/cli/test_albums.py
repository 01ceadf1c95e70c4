"""The README's CLI walk-through, run for real: album add → index → search → list → remove (random weights)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photomapd.cli import main

from tests.daemon.images import make_album


def test_readme_walkthrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "invokeai" / "outputs" / "images"
    make_album(folder, 4)
    assert main(["album", "add", "invokeai", str(folder), "--name", "InvokeAI Gallery"]) == 0
    assert "Added album 'invokeai'" in capsys.readouterr().out

    assert main(["index", "invokeai", "--pretrained", "none", "--quiet", "--no-map"]) == 0
    assert "invokeai: 4 new, 0 changed, 0 removed, 0 unchanged" in capsys.readouterr().out

    assert main(["search", "invokeai", "a red fox in the snow", "--pretrained", "none", "--json", "--limit", "2", "--all"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert len(page["results"]) == 2 and page["total"] == page["ranked"] == 4
    files = {str(path) for path in folder.iterdir()}
    assert all(hit["path"] in files for hit in page["results"]), "the JSON names each file, like the plain listing"
    assert main(["search", "invokeai", "a red fox in the snow", "--pretrained", "none", "--json"]) == 0
    cut = json.loads(capsys.readouterr().out)
    assert cut["cut"]["mode"] == "auto" and 1 <= cut["total"] <= 4 and cut["ranked"] == 4

    # another model's vectors: the message names the command that re-embeds, not a panel button
    assert main(["search", "invokeai", "fox", "--model", "ViT-B-32", "--pretrained", "none"]) == 1
    assert capsys.readouterr().err == (
        "photomapd: This album was indexed with another model: "
        "run `photomapd index invokeai --model ViT-B-32 --pretrained none` to re-embed it\n"
    )

    assert main(["album", "edit", "invokeai", "--name", "My Gallery", "--no-watch"]) == 0
    assert "Updated album 'invokeai' (My Gallery)" in capsys.readouterr().out

    assert main(["album", "list"]) == 0
    assert "My Gallery\t4 images indexed" in capsys.readouterr().out

    assert main(["album", "remove", "invokeai"]) == 0
    capsys.readouterr()
    assert main(["album", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert all(path.exists() for path in folder.iterdir()), "removing an album never touches its files"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["album", "add", "Bad Key", "/tmp"], "not valid"),
        (["album", "add", "ok", "relative/dir"], "absolute path"),
        (["album", "remove", "missing"], "No album named 'missing'"),
        (["index", "missing"], "No album named 'missing'"),
        (["album", "edit", "missing", "--name", "x"], "No album named 'missing'"),
        (["album", "edit", "missing"], "Nothing to change"),
        (["search", "missing", "fox", "--limit", "100000"], "limit: Input should be less than or equal to"),
    ],
)
def test_user_errors_are_one_line_and_exit_non_zero(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_search_of_an_album_never_indexed_names_the_index_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "photos").mkdir()
    assert main(["album", "add", "fresh", str(tmp_path / "photos")]) == 0
    capsys.readouterr()
    assert main(["search", "fresh", "fox"]) == 1
    assert capsys.readouterr().err == "photomapd: This album has not been indexed yet: run `photomapd index fresh` first\n"


def test_input_a_model_refuses_exits_2_like_a_bad_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "missing", "fox", "--limit", "0"]) == 2
    assert capsys.readouterr().err == "photomapd: limit: Input should be greater than or equal to 1\n"
