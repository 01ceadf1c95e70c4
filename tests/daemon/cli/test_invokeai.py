"""`photomapd invokeai ...`: probe prints the version or the message; the password never reaches the output; `set`
goes through a running daemon; `show` names the board."""

from __future__ import annotations

import io
import stat
import sys
from pathlib import Path
from typing import Callable

import pytest

from photomapd import config
from photomapd.cli import main
from photomapd.native import lifecycle

from tests.daemon.fake_invokeai import DEFAULT_USERS, FakeInvokeAI
from tests.daemon.images import make_png

USER, PASSWORD = next(iter(DEFAULT_USERS.items()))  # the fake_url fixture's user, who owns its board "Sketches"


def test_probe_prints_the_version(fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invokeai", "probe", fake_url[1]]) == 0
    assert capsys.readouterr().out.strip() == "6.13.1"


def test_probe_prints_the_message_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["invokeai", "probe", "file:///tmp"]) == 1
    assert capsys.readouterr().err.strip() == "InvokeAI URL must use http:// or https://"


def test_set_show_and_boards_never_print_the_password(
    fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, url = fake_url
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["invokeai", "set", "--url", url, "--username", USER, "--password-stdin"]) == 0
    assert main(["invokeai", "show"]) == 0
    assert main(["invokeai", "boards"]) == 0
    out = capsys.readouterr()
    assert "saved; InvokeAI 6.13.1" in out.out and "password: set" in out.out and "Sketches" in out.out
    assert PASSWORD not in out.out + out.err
    assert stat.S_IMODE(config.secrets_path().stat().st_mode) == 0o600
    assert config.load_config().invokeai.url == url


def test_boards_with_a_wrong_password_is_an_error(
    fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("not-it\n"))
    main(["invokeai", "set", "--url", fake_url[1], "--username", USER, "--password-stdin"])
    assert main(["invokeai", "boards"]) == 1
    assert "InvokeAI rejected the username or password" in capsys.readouterr().err


def test_show_names_the_chosen_board_or_says_why_it_cannot(
    fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.daemon.processes import free_port

    fake, url = fake_url
    board_id = next(iter(fake.boards))
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["invokeai", "set", "--url", url, "--username", USER, "--password-stdin", "--board", board_id]) == 0
    capsys.readouterr()
    assert main(["invokeai", "show"]) == 0
    assert "board:    Sketches\n" in capsys.readouterr().out  # its name, not its id

    assert main(["invokeai", "set", "--url", f"http://127.0.0.1:{free_port()}"]) == 0  # nothing listens there
    capsys.readouterr()
    assert main(["invokeai", "show"]) == 0
    assert f"board:    {board_id} (name unknown: Could not reach backend" in capsys.readouterr().out


def test_set_goes_through_the_running_daemon(
    fake_url: tuple[FakeInvokeAI, str], start_daemon: Callable[[], lifecycle.DaemonStatus]
) -> None:
    from tests.daemon.processes import api, photomapd

    fake, url = fake_url
    board_id = next(iter(fake.boards))
    daemon = start_daemon()
    saved = photomapd("invokeai", "set", "--url", url, "--username", USER, "--password-stdin", stdin=PASSWORD + "\n")
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.strip() == "saved; InvokeAI 6.13.1"
    # The daemon's own view changed: it saved the settings (a CLI writing config.json behind its back would not
    # show here, and the daemon's next save would undo it).
    status, view = api(daemon.port, "GET", "/settings/invokeai")
    assert status == 200
    assert (view["url"], view["username"], view["password_set"]) == (url, USER, True)
    assert config.load_config().invokeai.url == url

    chosen = photomapd("invokeai", "set", "--board", board_id)
    assert chosen.returncode == 0, chosen.stderr
    assert api(daemon.port, "GET", "/settings/invokeai")[1]["board_id"] == board_id
    status, boards = api(daemon.port, "GET", "/invokeai/boards")  # the daemon logs in with the password it got
    assert status == 200 and "Sketches" in [board["board_name"] for board in boards]

    shown = photomapd("invokeai", "show")
    assert shown.returncode == 0 and "board:    Sketches\n" in shown.stdout
    assert PASSWORD not in saved.stdout + saved.stderr + chosen.stdout + shown.stdout + shown.stderr


def test_a_board_album_is_added_indexed_and_listed_from_the_terminal(
    fake_url: tuple[FakeInvokeAI, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake, url = fake_url
    board = next(board_id for board_id, board in fake.boards.items() if board["board_name"] == "Sketches")
    for seed in range(2):
        fake.add_image(f"sketch-{seed}.png", owner=USER, board_id=board, data=make_png(tmp_path / f"{seed}.png", seed).read_bytes())
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["invokeai", "set", "--url", url, "--username", USER, "--password-stdin"]) == 0
    capsys.readouterr()

    assert main(["album", "add", "sk", "/tmp", "--boards", board]) == 1
    assert capsys.readouterr().err == (
        "photomapd: A board album takes its images from InvokeAI, not from folders: leave folders empty\n"
    )
    assert main(["album", "add", "sk", "--boards", board, "--name", "Sketches"]) == 0
    assert f"Added album 'sk' (Sketches): InvokeAI boards {board}" in capsys.readouterr().out
    assert main(["index", "sk", "--pretrained", "none", "--quiet", "--no-map"]) == 0
    assert "sk: 2 new" in capsys.readouterr().out
    assert main(["album", "list"]) == 0
    assert f"sk\tSketches\t2 images indexed\tInvokeAI boards {board}" in capsys.readouterr().out
    assert main(["album", "edit", "sk", "--boards", "all"]) == 0
    assert "InvokeAI boards all" in capsys.readouterr().out
