"""`photomapd serve`, the native-messaging host, and the daemon's lifecycle: status, stop, install, uninstall."""

from __future__ import annotations

import argparse
import asyncio
import logging
from photomapd import config
from photomapd.cli._flags import add_model_flags


log = logging.getLogger(__name__)


def cmd_serve(args: argparse.Namespace) -> int:
    from photomapd.memory import keep_unused_out

    if config.load_config().model_idle_unload_s > 0:  # a daemon that rests light: before LanceDB is imported
        keep_unused_out()
    from photomapd.api.keys import ServeOptions
    from photomapd.api.server import serve

    options = ServeOptions(
        token=config.load_or_create_token(),
        model=args.model,
        pretrained=args.pretrained,
        watch=not args.no_watch,
    )
    asyncio.run(serve(options, port=args.port))
    return 0


def register_serve(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the daemon (HTTP API on 127.0.0.1, folder watching)")
    parser.add_argument("--port", type=int, help="port to listen on (default: config, 8765; a free one if taken)")
    parser.add_argument("--no-watch", action="store_true", help="don't watch album folders for changes")
    add_model_flags(parser)
    parser.set_defaults(func=cmd_serve)


# --- daemon lifecycle, native messaging, install ---------------------------------------------------------------------


def cmd_native_host(args: argparse.Namespace) -> int:
    from logging.handlers import RotatingFileHandler

    from photomapd.native import host as native_host

    # stdout belongs to the browser's framing: logs go to a file, never to stdout (stderr ends up in the browser's log)
    log_file = native_host.log_file_path()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = RotatingFileHandler(log_file, maxBytes=1024**2, backupCount=1, encoding="utf-8")
    logging.basicConfig(
        force=True,
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    log.info("native host started by %s", " ".join(args.caller) or "(no caller arguments)")
    return native_host.run_stdio()


def cmd_status(args: argparse.Namespace) -> int:
    from photomapd.native import lifecycle

    daemon = lifecycle.running_daemon()
    if daemon is None:
        unreachable = lifecycle.unreachable_daemon()  # a live daemon whose files it could not put right
        print(f"photomapd: {unreachable.reason}" if unreachable else "photomapd is not running")
        return 3  # LSB status code for "not running", so scripts can tell it from an error
    print(f"photomapd {daemon.version} is running at {daemon.url} (pid {daemon.pid})")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from photomapd.native import lifecycle

    stopped = lifecycle.stop_daemon(timeout_s=args.timeout)
    print(f"photomapd (pid {stopped.pid}) stopped" if stopped else "photomapd is not running")
    return 0


def cmd_install(args: argparse.Namespace) -> int:
    from photomapd.native import install

    browsers = install.BROWSERS if args.browser == "all" else (args.browser,)
    target = install.Target.current()
    written = install.install(target, browsers, args.extension_id or (), autostart_at_login=not args.no_autostart)
    for item in written:
        print(f"wrote {item}")
    at_login = "" if args.no_autostart else ", and it starts at login"
    print(f"Done: the PhotoMap extension can now start photomapd{at_login}")
    return 0


def cmd_uninstall(args: argparse.Namespace) -> int:
    from photomapd.native import install

    removed = install.uninstall(install.Target.current())
    for item in removed:
        print(f"removed {item}")
    print("Done: native-messaging host and login start removed (albums, index and settings are kept)")
    return 0


def register_native(sub: argparse._SubParsersAction) -> None:
    host = sub.add_parser("native-host", help="native-messaging host the browser starts (stdio frames; not for humans)")
    # Browsers add their own arguments (Chrome: the caller origin, --parent-window on Windows; Firefox: the manifest
    # path and add-on id); the launcher puts them after `--`, and they are only logged.
    host.add_argument("caller", nargs="*", help=argparse.SUPPRESS)
    host.set_defaults(func=cmd_native_host)

    status = sub.add_parser("status", help="is the daemon running, on which port (exit code 3 when not)")
    status.set_defaults(func=cmd_status)

    stop = sub.add_parser("stop", help="stop the running daemon (an in-flight index batch is committed first)")
    stop.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for it to exit (default 30)")
    stop.set_defaults(func=cmd_stop)

    install = sub.add_parser("install", help="register the native-messaging host with browsers, and start at login")
    install.add_argument(
        "--browser",
        choices=["chrome", "chromium", "edge", "brave", "firefox", "all"],
        default="all",
        help="which browser to register with (default: all)",
    )
    install.add_argument(
        "--extension-id",
        action="append",
        metavar="ID",
        help="extension id allowed to call the host; repeatable; Chrome ids and Firefox ids (name@domain) are told "
        f"apart by shape (default: {config.DEFAULT_EXTENSION_ID} and photomap@photomap.dev)",
    )
    install.add_argument("--no-autostart", action="store_true", help="don't start the daemon at login")
    install.set_defaults(func=cmd_install)

    uninstall = sub.add_parser("uninstall", help="remove what install wrote (albums, index and settings are kept)")
    uninstall.set_defaults(func=cmd_uninstall)
