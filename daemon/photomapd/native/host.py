"""`photomapd native-host`: the browser's way to find (and, if need be, start) the daemon.

The browser starts this process and talks over stdin/stdout: each message is a 4-byte length in native byte order,
then that many bytes of UTF-8 JSON. stdout carries frames and nothing else (a stray byte desynchronises the browser
and it drops the port), so logs go to a file and `run` points `sys.stdout` at stderr while it holds the real one.

Requests: `{"type": "hello"|"status"|"start", "id"?: str|int}`. Replies echo `id`:
- hello  -> {"type": "hello", "port", "token", "version"}; starts the daemon first when none answers. A daemon that
  damaged files (state.json, token) hide is found again once it has repaired them (a second or so), or the error
  says what is wrong within lifecycle.REPAIR_WAIT_S: never the whole start timeout.
- start  -> {"type": "start", "running": true, "port", "pid", "version"}; the same start, without the token.
- status -> {"type": "status", "running", "port", "pid", "version"}; never starts anything.
- anything wrong -> {"type": "error", "code", "message"}; a daemon that could not start adds "command": the exact
  command line that starts this install's daemon (its own interpreter), for the panel to show instead of a bare
  `photomapd serve` a README install has no PATH entry for. The message names the cause (config.json at once, a
  serve that exited early from its last error line in daemon.log), never only an exit code.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import sys
from pathlib import Path
from typing import BinaryIO, Callable, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from photomapd import config
from photomapd.native import lifecycle
from photomapd.errors import (
    DaemonStartFailed,
    NativeFrameInvalid,
    NativeMessageInvalid,
    NativeMessageUnknown,
    PhotoMapError,
)

log = logging.getLogger(__name__)

HEADER = struct.Struct("=I")  # native byte order, standard 4-byte size: what Chrome and Firefox both use
MAX_TO_BROWSER_BYTES = 1024**2  # Chrome closes the port on a bigger host message
MAX_FROM_BROWSER_BYTES = 64 * 1024**2  # the browsers' own cap on a message to the host
MAX_ID_CHARS = 200  # ids only correlate requests with replies; a long one is a bug on the sender's side

MessageId = str | int | None


class HostRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str
    id: MessageId = None


class HelloReply(BaseModel):
    type: Literal["hello"] = "hello"
    port: int
    token: str
    version: str
    id: MessageId = None


class StatusReply(BaseModel):
    type: Literal["status", "start"] = "status"
    running: bool
    port: int | None = None
    pid: int | None = None
    version: str | None = None
    id: MessageId = None


class ErrorReply(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str
    command: str | None = None  # daemon_start_failed: how to start this install's daemon by hand
    id: MessageId = None


# --- framing --------------------------------------------------------------------------------------------------------


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: BinaryIO) -> bytes | None:
    """One message body; None at a clean end of input (the browser closed the port)."""
    header = _read_exactly(stream, HEADER.size)
    if not header:
        return None
    if len(header) < HEADER.size:
        raise NativeFrameInvalid("Malformed native message frame: input ended inside the length prefix")
    (length,) = HEADER.unpack(header)
    if length > MAX_FROM_BROWSER_BYTES:
        raise NativeFrameInvalid(f"Native message of {length} bytes is over the {MAX_FROM_BROWSER_BYTES} byte limit")
    body = _read_exactly(stream, length)
    if len(body) < length:
        raise NativeFrameInvalid(f"Malformed native message frame: {len(body)} of {length} bytes arrived")
    return body


def encode_frame(message: BaseModel) -> bytes:
    """The frame for `message`; one over the browser's limit is replaced by an error saying so."""
    body = message.model_dump_json().encode("utf-8")
    if len(body) > MAX_TO_BROWSER_BYTES:
        log.error("reply of %d bytes is over the %d byte limit", len(body), MAX_TO_BROWSER_BYTES)
        too_big = ErrorReply(code="reply_too_large", message=f"The reply was over {MAX_TO_BROWSER_BYTES} bytes")
        body = too_big.model_dump_json().encode("utf-8")
    return HEADER.pack(len(body)) + body  # the length of the bytes, not of the str


def write_frame(out: BinaryIO, message: BaseModel) -> None:
    out.write(encode_frame(message))
    out.flush()


# --- messages -------------------------------------------------------------------------------------------------------


def parse_request(body: bytes) -> HostRequest:
    try:
        raw = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise NativeMessageInvalid() from exc
    if not isinstance(raw, dict):
        raise NativeMessageInvalid()
    try:
        request = HostRequest.model_validate(raw)
    except ValidationError as exc:
        raise NativeMessageInvalid() from exc
    if isinstance(request.id, str) and len(request.id) > MAX_ID_CHARS:
        raise NativeMessageInvalid(f"A native message id must be at most {MAX_ID_CHARS} characters")
    return request


def _hello(request: HostRequest) -> BaseModel:
    daemon = lifecycle.start_daemon()
    # The token that daemon just accepted, not a second read of the file: that one could be damaged meanwhile.
    return HelloReply(port=daemon.port, token=daemon.token, version=daemon.version, id=request.id)


def _start(request: HostRequest) -> BaseModel:
    daemon = lifecycle.start_daemon()
    return StatusReply(
        type="start", running=True, port=daemon.port, pid=daemon.pid, version=daemon.version, id=request.id
    )


def _status(request: HostRequest) -> BaseModel:
    daemon = lifecycle.running_daemon()
    if daemon is None:
        return StatusReply(running=False, id=request.id)
    return StatusReply(running=True, port=daemon.port, pid=daemon.pid, version=daemon.version, id=request.id)


HANDLERS: dict[str, Callable[[HostRequest], BaseModel]] = {"hello": _hello, "start": _start, "status": _status}


def respond(body: bytes) -> BaseModel:
    """The reply to one message body; every failure becomes an error reply, so the loop never dies on input."""
    request: HostRequest | None = None
    try:
        request = parse_request(body)
        handler = HANDLERS.get(request.type)
        if handler is None:
            raise NativeMessageUnknown(request.type)
        return handler(request)
    except PhotoMapError as err:
        log.warning("native message refused: %s", err.message)
        command = lifecycle.serve_command_line() if isinstance(err, DaemonStartFailed) else None
        return ErrorReply(code=err.code, message=err.message, command=command, id=request.id if request else None)
    except Exception:
        log.exception("native message failed")
        message = f"The PhotoMap native host failed; see {log_file_path()}"
        return ErrorReply(code="internal", message=message, id=request.id if request else None)


def run_stdio() -> int:
    """`run` on this process's real stdin/stdout; anything else that prints goes to stderr instead."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() in any library must never reach the browser as a broken frame
    if sys.platform == "win32":
        import msvcrt

        for stream in (stdin, stdout):  # no CRLF translation inside a length-prefixed frame
            msvcrt.setmode(stream.fileno(), os.O_BINARY)
    return run(stdin, stdout)


def run(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """Answer frames until the browser closes stdin (exit 0) or breaks the framing (error frame, exit 1)."""
    while True:
        try:
            body = read_frame(stdin)
        except NativeFrameInvalid as err:
            log.warning("%s", err.message)  # the stream can't be resynchronised: say why once, then leave
            _write_or_ignore(stdout, ErrorReply(code=err.code, message=err.message))
            return 1
        if body is None:
            return 0
        if not _write_or_ignore(stdout, respond(body)):
            return 0


def _write_or_ignore(stdout: BinaryIO, message: BaseModel) -> bool:
    """False when the browser has gone away (broken pipe): nobody is left to tell."""
    try:
        write_frame(stdout, message)
    except (BrokenPipeError, ValueError):  # ValueError: the pipe object was closed under us
        return False
    return True


def log_file_path() -> Path:
    return config.data_dir() / "native-host.log"
