"""A small synchronous client for the running daemon's API, for CLI commands that change things (DESIGN §10).

Plain `http.client` like `native.lifecycle.fetch_status`: loopback only (no proxy), bearer token, JSON bodies. The
daemon's error answers `{"error": {"code", "message"}}` become `DaemonRefused` carrying its message, so the CLI prints
the same one line the panel shows.
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Generator, Iterator

from photomapd.errors import PhotoMapError
from photomapd.native import lifecycle

API_PREFIX = "/api/v1"
# A DELETE waits for the album's batch in flight to commit, and settings PUT probes InvokeAI (10 s timeout): generous,
# yet a hung daemon still ends the command.
REQUEST_TIMEOUT_S = 120.0
# The progress stream sends a keep-alive comment every 15 s (api.albums.SSE_HEARTBEAT_S): four missed means it's gone.
STREAM_TIMEOUT_S = 60.0
INVALID_REQUEST_EXIT = 2  # the daemon's 422 for a body that fails validation: the same exit as a local bad input


class DaemonRefused(PhotoMapError):
    """The daemon answered with an error; its message is the user's message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.exit_code = INVALID_REQUEST_EXIT if code == "invalid_request" else 1
        super().__init__(message)


class DaemonGone(PhotoMapError):
    """The daemon stopped answering in the middle of a command (stopped, crashed, or hung)."""

    status = 503
    code = "daemon_gone"
    message = "The PhotoMap daemon stopped answering"


class DaemonClient:
    """Requests to one daemon; each opens its own loopback connection (a command makes only a handful)."""

    def __init__(self, daemon: lifecycle.DaemonStatus, token: str) -> None:
        self.daemon = daemon
        self.token = token

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.daemon.port, timeout=timeout_s)

    def _headers(self, has_body: bool) -> dict[str, str]:
        # The guard wants exactly 127.0.0.1:<port> as Host, the same check that stops DNS-rebound pages.
        headers = {"Authorization": f"Bearer {self.token}", "Host": f"127.0.0.1:{self.daemon.port}"}
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def request(self, method: str, path: str, body: object | None = None) -> Any:
        """The decoded JSON answer (None for an empty one, e.g. 204); an error answer raises DaemonRefused."""
        payload = json.dumps(body).encode("utf-8") if body is not None else None
        conn = self._connection(REQUEST_TIMEOUT_S)
        try:
            conn.request(method, API_PREFIX + path, body=payload, headers=self._headers(payload is not None))
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonGone(f"The PhotoMap daemon stopped answering ({exc or type(exc).__name__})") from exc
        finally:
            conn.close()
        answer = _decode(raw)
        if response.status >= 400:
            raise _refusal(response.status, answer)
        return answer

    def get(self, path: str) -> Any:
        return self.request("GET", path)

    def post(self, path: str, body: object) -> Any:
        return self.request("POST", path, body)

    def put(self, path: str, body: object) -> Any:
        return self.request("PUT", path, body)

    def patch(self, path: str, body: object) -> Any:
        return self.request("PATCH", path, body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def events(self, path: str) -> Generator[tuple[str, Any], None, None]:
        """Server-Sent Events as (event name, decoded data) until the caller stops iterating; a stream that ends or
        falls silent past STREAM_TIMEOUT_S raises DaemonGone. Comments (`: keep-alive`) are skipped."""
        conn = self._connection(STREAM_TIMEOUT_S)
        try:
            try:
                conn.request("GET", API_PREFIX + path, headers=self._headers(False))
                response = conn.getresponse()
                if response.status != 200:
                    raise _refusal(response.status, _decode(response.read()))
                yield from _parse_events(response)
            except (OSError, http.client.HTTPException) as exc:
                raise DaemonGone(f"The PhotoMap daemon stopped answering ({exc or type(exc).__name__})") from exc
        finally:
            conn.close()


def _parse_events(response: http.client.HTTPResponse) -> Iterator[tuple[str, Any]]:
    name, data = "message", []
    while True:
        line = response.readline()
        if not line:
            raise DaemonGone("The PhotoMap daemon closed the progress stream (stopped?)")
        text = line.decode("utf-8").rstrip("\r\n")
        if not text:  # a blank line ends an event
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif text.startswith(":"):
            continue
        else:
            field, _, value = text.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)


def _decode(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _refusal(status: int, answer: Any) -> DaemonRefused:
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return DaemonRefused(status, str(error.get("code") or "error"), error["message"])
    return DaemonRefused(status, "error", f"The PhotoMap daemon answered HTTP {status}")


def connect() -> DaemonClient | None:
    """The running daemon of this data dir (state.json + a /status answer with our token), or None."""
    daemon = lifecycle.running_daemon()
    if daemon is None:
        return None
    return DaemonClient(daemon, daemon.token)  # the token the daemon just accepted, not a second read of the file
