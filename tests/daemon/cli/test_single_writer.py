"""One writer per data dir (DESIGN §10), with real processes: while `serve` runs, CLI changes go through its API;
with no daemon, a CLI command holds the instance lock and a second one waits for it (or, with --no-wait, says who
holds it and exits 75)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Callable

from photomapd import config
from photomapd.albums import AlbumCreate, add_album
from photomapd.native import lifecycle

from tests.daemon.images import make_album
from tests.daemon.processes import (
    CLI_S,
    LockHolder,
    albums_by_key,
    api,
    photomapd,
    photomapd_in_background,
    photomapd_on_a_tty,
    use_test_model,
    wait_until,
)

StartDaemon = Callable[[], lifecycle.DaemonStatus]


def seed_album(key: str, folder: Path, images: int) -> None:
    """An album in config.json before any daemon starts (as if added earlier), with `images` PNGs."""
    make_album(folder, images)
    add_album(config.ConfigStore(), AlbumCreate(key=key, display_name=key.title(), folders=[str(folder)]))


def test_album_add_goes_through_the_daemon_and_survives_the_panels_next_save(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    seed_album("base", tmp_path / "base", 1)
    daemon = start_daemon()
    make_album(tmp_path / "fresh", 3)
    added = photomapd("album", "add", "fresh", str(tmp_path / "fresh"), "--name", "Fresh", "--no-watch")
    assert added.returncode == 0, added.stderr
    assert "Added album 'fresh' (Fresh)" in added.stdout and "The daemon is indexing it now" in added.stdout
    fresh = albums_by_key(daemon.port)["fresh"]
    assert (fresh["display_name"], fresh["watch"]) == ("Fresh", False)

    # The panel saves another album: the daemon writes config.json from what it knows, which includes the CLI's album.
    status, _ = api(daemon.port, "PATCH", "/albums/base", {"display_name": "Base, renamed"})
    assert status == 200
    assert set(albums_by_key(daemon.port)) == {"base", "fresh"}
    assert {album.key for album in config.load_config().albums} == {"base", "fresh"}


def test_album_edit_and_remove_go_through_the_daemon(tmp_path: Path, start_daemon: StartDaemon) -> None:
    seed_album("trip", tmp_path / "trip", 1)
    daemon = start_daemon()
    edited = photomapd("album", "edit", "trip", "--name", "Road trip", "--no-watch", "--poll")
    assert edited.returncode == 0, edited.stderr
    trip = albums_by_key(daemon.port)["trip"]
    assert (trip["display_name"], trip["watch"], trip["poll"]) == ("Road trip", False, True)

    removed = photomapd("album", "remove", "trip")
    assert removed.returncode == 0, removed.stderr
    assert albums_by_key(daemon.port) == {} and config.load_config().albums == []
    assert (tmp_path / "trip" / "img_0000.png").exists(), "removing an album never touches its files"

    again = photomapd("album", "remove", "trip")  # the daemon's error, as one line
    assert again.returncode == 1 and again.stderr == "photomapd: No album named 'trip'\n"
    unknown = photomapd("album", "edit", "trip", "--name", "x")
    assert unknown.returncode == 1 and unknown.stderr == "photomapd: No album named 'trip'\n"


def test_index_through_the_daemon_draws_its_progress_and_fills_its_table(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    seed_album("demo", tmp_path / "demo", 4)
    daemon = start_daemon()
    other_model = photomapd("index", "demo", "--model", "RN50")
    assert other_model.returncode == 1
    assert other_model.stderr.startswith("photomapd: The running daemon indexes with ViT-B-32 (none)")
    assert len(other_model.stderr.splitlines()) == 1

    code, out, drawn = photomapd_on_a_tty("index", "demo")
    assert code == 0, drawn
    assert out.strip() == "demo: 4 new, 0 changed, 0 removed, 0 unchanged"
    assert "4/4" in drawn, drawn  # the bar, drawn from the daemon's progress events
    demo = albums_by_key(daemon.port)["demo"]
    assert demo["indexed_count"] == 4  # in the daemon's table
    assert demo["progress"]["state"] == "done" and demo["progress"]["run_id"] >= 1  # and the daemon's own run

    again = photomapd("index", "demo", "--quiet")
    assert again.returncode == 0 and again.stdout.strip() == "demo: 0 new, 0 changed, 0 removed, 4 unchanged"


def test_ctrl_c_stops_following_and_the_daemon_goes_on_indexing(tmp_path: Path, start_daemon: StartDaemon) -> None:
    images = 4
    seed_album("demo", tmp_path / "demo", images)
    daemon = start_daemon()
    cli = photomapd_in_background(tmp_path / "cli.log", "index", "demo", "--quiet")

    def run_started() -> bool:
        # Scanning, or loading the model (seconds): the CLI asked for this run, so it is following it by now.
        return albums_by_key(daemon.port)["demo"]["progress"]["phase"] in ("scanning", "loading_model")

    wait_until(run_started, "the daemon to start the run")
    assert cli.poll() is None, "the CLI finished before the Ctrl-C: the run was too short to interrupt"
    cli.send_signal(signal.SIGINT)
    assert cli.wait(timeout=CLI_S) == 130
    assert "Stopped following; the daemon goes on indexing 'demo'" in (tmp_path / "cli.log").read_text()
    assert "Traceback" not in (tmp_path / "cli.log").read_text()
    wait_until(lambda: albums_by_key(daemon.port)["demo"]["indexed_count"] == images, "the daemon to finish", CLI_S)


def test_a_second_cli_waits_for_the_one_holding_the_lock(tmp_path: Path) -> None:
    from photomapd.store import Store

    seed_album("demo", tmp_path / "demo", 3)
    use_test_model()
    holder = LockHolder("photomapd index demo")
    busy = f"'photomapd index demo' (pid {holder.pid})"
    log = tmp_path / "second.log"
    try:
        refused = photomapd("index", "demo", "--no-wait")
        assert refused.returncode == 75
        assert refused.stderr == f"photomapd: {busy} is changing PhotoMap's data; try again when it has finished\n"

        second = photomapd_in_background(log, "index", "demo", "--quiet", "--no-map")
        waiting = f"waiting for {busy} to finish…"
        wait_until(lambda: waiting in log.read_text(), "the second CLI to say what it waits for")
        assert second.poll() is None and Store(config.index_dir()).open("demo") is None  # it waits, idle
    finally:
        holder.release()

    def second_holds_the_lock() -> bool:
        named = lifecycle.read_lock_holder()
        return named is not None and named.pid == second.pid

    wait_until(second_holds_the_lock, "the second CLI to take the lock for its run")
    assert lifecycle.read_lock_holder() == lifecycle.LockHolder(second.pid, "photomapd index demo --quiet --no-map")
    out, _ = second.communicate(timeout=CLI_S)
    assert second.returncode == 0, log.read_text()
    assert out.strip() == "demo: 3 new, 0 changed, 0 removed, 0 unchanged"
    assert log.read_text().count(waiting) == 1, "said once, not at every retry"
    after = lifecycle.InstanceLock()
    assert after.acquire(), "released when the command ended"
    after.release()
