"""`photomapd index KEY`: through the running daemon, drawing its progress stream as the bar, or in this process under
the instance lock when none runs. Both end with the same summary line and exit codes."""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any, Generator
from urllib.parse import quote

from photomapd import config
from photomapd.cli._flags import add_model_flags
from photomapd.cli._remote import DaemonClient, DaemonGone
from photomapd.cli._writer import add_wait_flag, single_writer
from photomapd.errors import BadRequest

if TYPE_CHECKING:
    from tqdm import tqdm

    from photomapd.index.progress import IndexProgress
    from photomapd.model.runner import ModelRunner

Events = Generator[tuple[str, Any], None, None]
FINAL_STATES = ("done", "failed", "cancelled")
INTERRUPTED_EXIT = 130  # 128 + SIGINT, what a shell reports for Ctrl-C


def cmd_index(args: argparse.Namespace) -> int:
    with single_writer(args) as daemon:
        if daemon is not None:
            return _index_through(daemon, args)
        return _index_locally(args)


# --- shared: the bar and the summary --------------------------------------------------------------------------------


def _progress_bar(key: str, quiet: bool) -> tqdm:
    from tqdm import tqdm

    return tqdm(total=0, unit="img", disable=quiet or None, desc=key, dynamic_ncols=True)


def _draw(bar: tqdm, total: int, done: int, phase: str) -> None:
    if bar.total != total:
        bar.reset(total=total)
    bar.n = done
    bar.set_postfix_str(phase, refresh=False)
    bar.refresh()


def _report(key: str, progress: IndexProgress) -> int:
    """The run's final progress: skipped files on stderr, then one summary line; exit 1 unless it finished."""
    from photomapd.index.progress import describe

    for skipped in progress.skipped:
        print(f"skipped {skipped.path}: {skipped.reason}", file=sys.stderr)
    if progress.state == "failed":
        print(f"photomapd: indexing '{key}' failed: {progress.message}", file=sys.stderr)
        return 1
    if progress.state == "cancelled":
        print(f"photomapd: indexing '{key}' was stopped (album removed or daemon stopping)", file=sys.stderr)
        return 1
    print(f"{key}: {describe(progress)}")
    return 0


# --- in this process ------------------------------------------------------------------------------------------------


def _index_locally(args: argparse.Namespace) -> int:
    """The daemon's own owner of album work (`jobs.AlbumJobs`), built here for one run."""
    from photomapd.albums import find_album
    from photomapd.model.runner import ModelRunner

    if args.engine == "ray":  # before the model starts: without Ray installed, say what to install and stop
        from photomapd.scale.engine import require_ray

        require_ray()
    config_store = config.ConfigStore()
    cfg = config_store.current
    album = find_album(cfg, args.key)
    runner = ModelRunner(args.model or cfg.model, args.pretrained or cfg.pretrained, precision=cfg.model_precision)
    bar = _progress_bar(album.key, args.quiet)
    try:
        result = asyncio.run(_run_locally(args, config_store, runner, bar))
    finally:
        bar.close()
        runner.close()
    return _report(album.key, result)


async def _run_locally(
    args: argparse.Namespace, config_store: config.ConfigStore, runner: ModelRunner, bar: tqdm
) -> IndexProgress:
    from photomapd.scale.engine import RayOptions
    from photomapd.jobs import index_once
    from photomapd.store import Store

    # Ctrl-C cancels this; the owner then stops the run after the batch in flight is committed.
    return await index_once(
        Store(config.index_dir()), runner, config_store, args.key, "rebuild" if args.rebuild else "update",
        on_progress=lambda progress: _draw(bar, progress.total, progress.done, progress.phase),
        refresh_map=not args.no_map, ray=RayOptions(address=args.address) if args.engine == "ray" else None,
    )  # fmt: skip


# --- through the daemon ---------------------------------------------------------------------------------------------


def _index_through(daemon: DaemonClient, args: argparse.Namespace) -> int:
    key = args.key
    _check_model(daemon, args)
    if args.no_map:
        print("photomapd: note: the daemon updates the map after every run; --no-map has no effect", file=sys.stderr)
    path = f"/albums/{quote(key, safe='')}"
    bar = _progress_bar(key, args.quiet)
    events = daemon.events(f"{path}/progress?follow=1")
    try:
        try:
            # The stream opens with the album's current state; once that is here the daemon has subscribed us, so
            # starting the run only now means none of its events can be missed.
            _next_progress(events)
            # Queued behind a run under way, or joined with one already queued: the answer names the run to follow.
            started = daemon.post(f"{path}/index", _index_body(args))
            final = _follow(events, _run_id(started), bar)
        finally:
            events.close()
            bar.close()
    except KeyboardInterrupt:
        print(f"\nStopped following; the daemon goes on indexing '{key}' (the panel shows it)", file=sys.stderr)
        return INTERRUPTED_EXIT
    except DaemonGone as gone:
        raise DaemonGone(f"{gone.message}; the daemon resumes indexing '{key}' when it starts again") from gone
    if final is None:
        print(f"{key}: indexed (a newer run started before this one's summary arrived)")
        return 0
    from photomapd.index.progress import IndexProgress

    return _report(key, IndexProgress.model_validate(final))


def _index_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"mode": "rebuild" if args.rebuild else "update"}
    if args.engine == "ray":  # only then: a daemon from before the Ray engine refuses fields it does not know
        body.update(engine="ray", address=args.address)
    return body


def _follow(events: Events, run_id: int | None, bar: tqdm) -> dict[str, Any] | None:
    """Draw one run's events until its final one; None when a newer run shows up without ours having ended.

    Only events of `run_id` count. Without run ids (a daemon from before them), the run is the one whose `running`
    events come next, and it ends with the first final event after one of them."""
    seen_running = False
    while True:
        progress = _next_progress(events)
        event_run = _run_id(progress)
        if run_id is not None and event_run is not None:
            if event_run < run_id:
                continue  # an earlier run's last words
            if event_run > run_id:
                return None
        elif progress.get("state") == "running":
            seen_running = True
        elif not seen_running:
            continue
        _draw(bar, int(progress.get("total") or 0), int(progress.get("done") or 0), str(progress.get("phase") or ""))
        if progress.get("state") in FINAL_STATES:
            return progress


def _next_progress(events: Events) -> dict[str, Any]:
    for name, data in events:
        if name == "progress" and isinstance(data, dict):
            return data
    raise AssertionError("unreachable: the event stream raises DaemonGone when it ends")


def _run_id(progress: dict[str, Any]) -> int | None:
    run_id = progress.get("run_id")
    return run_id if isinstance(run_id, int) and not isinstance(run_id, bool) else None


def _check_model(daemon: DaemonClient, args: argparse.Namespace) -> None:
    """The daemon embeds with its own model: a different --model/--pretrained can't apply to its runs."""
    if args.model is None and args.pretrained is None:
        return
    from photomapd.model.names import embedding_names

    status = daemon.get("/status")
    model, pretrained = str(status.get("model")), str(status.get("pretrained"))
    wanted = embedding_names(args.model or model, args.pretrained or pretrained)
    if wanted != embedding_names(model, pretrained):
        raise BadRequest(
            f"The running daemon indexes with {model} ({pretrained}): to change that, set \"model\" and "
            f"\"pretrained\" in {config.config_path()} and restart the daemon (photomapd stop, then photomapd serve)"
        )


def register_index(sub: argparse._SubParsersAction) -> None:
    index = sub.add_parser("index", help="index an album: new and changed files are embedded, removed ones dropped")
    index.add_argument("key", help="album key")
    index.add_argument("--rebuild", action="store_true", help="re-embed every image from scratch")
    index.add_argument("--no-map", action="store_true", help="don't update the semantic map afterwards (no daemon)")
    index.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    index.add_argument(
        "--engine", choices=("local", "ray"), default="local",
        help="embed on this machine (default) or on a Ray cluster (needs pip install -e '.[scale]')",
    )  # fmt: skip
    index.add_argument(
        "--address", help="with --engine ray: the cluster's head (e.g. 10.0.0.5:6379); default a new local cluster"
    )
    add_model_flags(index)
    add_wait_flag(index)
    index.set_defaults(func=cmd_index)
