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

    assert main(["search", "invokeai", "a red fox in the snow", "--pretrained", "none", "--json", "--limit", "2"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert len(page["results"]) == 2 and page["total"] == 4

    assert main(["album", "list"]) == 0
    assert "4 images indexed" in capsys.readouterr().out

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
    ],
)
def test_user_errors_are_one_line_and_exit_non_zero(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
