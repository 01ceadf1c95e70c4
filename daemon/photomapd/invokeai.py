"""The InvokeAI client (DESIGN §4): probe, login, boards, upload, recall — and the ref-image download.

What the panel's buttons do with it (Recall, Remix, Use as Ref Image) is in `actions.py`.

The only module that imports httpx. Every httpx exception and every upstream status code is turned into one of our
typed errors here, so callers (API handlers, the CLI) never see httpx. The base URL is used as the user typed it: a
path prefix (a reverse proxy's `/invoke/`) is kept because httpx appends our relative paths to it.
"""

from __future__ import annotations

import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any, Generator
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, SecretStr

from photomapd import errors
from photomapd.errors import (
    AuthRejected,
    AuthRequired,
    BackendUnreachable,
    BoardNotFound,
    CertificateUntrusted,
    InvokeAIRefused,
    InvokeAIUrlHost,
    InvokeAIUrlScheme,
    NotInvokeAI,
    RecallUnsupported,
    RefImageInvalid,
    RefImageTooBig,
)
from photomapd.refimage import Upload

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # a LAN host that is off should fail fast: the settings hint probes as the user types
READ_TIMEOUT_S = 10.0
UPLOAD_TIMEOUT_S = 30.0  # a large PNG over a slow link; InvokeAI also writes a thumbnail before it answers
TIMEOUT = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
QUEUE_ID = "default"
RECALL_SINCE = (6, 12)
STRICT_SINCE = (6, 13)  # `?strict=true`, `append=true` and `reference_images` came together
REF_MAX_BYTES = 50 * 1024**2  # larger than any generated image; stops a link to a huge file from filling memory
REF_MAX_REDIRECTS = 5
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


# --- URLs and versions ----------------------------------------------------------------------------------------------


def check_url(url: str) -> str:
    """The base URL to send requests to (the typed one, trimmed); raises the two URL messages of DESIGN §4."""
    text = url.strip()
    scheme = _SCHEME.match(text)
    if scheme is None or scheme.group(1).lower() not in ("http", "https"):
        raise InvokeAIUrlScheme()
    try:
        parts = urlsplit(text)
        host, _port = parts.hostname, parts.port  # `.port` raises on a port that is not a number
        httpx.URL(text)
    except (ValueError, httpx.InvalidURL) as exc:
        raise InvokeAIUrlHost() from exc
    if not host:
        raise InvokeAIUrlHost()
    return text


def version_tuple(version: str) -> tuple[int, ...]:
    """`"6.14.2"` → (6, 14, 2); tolerates `v2.02`, `3.0.2post1`, `6.12.0rc1`. No digits → (0,)."""
    match = re.match(r"\s*v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", version)
    if match is None:
        return (0,)
    return tuple(int(part) for part in match.groups() if part is not None)


# --- response shapes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    version: str
    multiuser: bool

    @property
    def can_recall(self) -> bool:
        return version_tuple(self.version) >= RECALL_SINCE

    @property
    def can_strict(self) -> bool:
        return version_tuple(self.version) >= STRICT_SINCE


class ProbeResult(BaseModel):
    ok: bool
    version: str | None = None
    multiuser: bool | None = None
    message: str | None = None


class Board(BaseModel):
    board_id: str | None  # None = Uncategorized, which is not a board on the server
    board_name: str


UNCATEGORIZED = Board(board_id=None, board_name="Uncategorized")


# --- login ----------------------------------------------------------------------------------------------------------


class _LoginAuth(httpx.Auth):
    """Bearer token for multi-user servers: logs in when it has credentials and no token, and once more on a 401.

    The login is yielded as a request of the flow itself, so it shares the client's pool and transport.
    """

    requires_response_body = True  # the login answer's token is read inside the flow

    def __init__(self, login_url: httpx.URL, username: str, password: SecretStr | None) -> None:
        self._login_url = login_url
        self._username = username
        self._password = password
        self._token: str | None = None  # memory only, never written anywhere
        self._login_needed = bool(username)  # False once the server said it has no logins (single-user)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = False
        if self._token is None and self._login_needed:
            yield from self._login()
            fresh = True
        response = yield self._authorize(request)
        if response.status_code != 401:
            return
        if not self._username:
            raise AuthRequired()
        if not fresh:  # the token expired or the server restarted: one new login, one retry
            yield from self._login()
            response = yield self._authorize(request)
            if response.status_code != 401:
                return
        self._token = None
        raise AuthRejected()

    def _authorize(self, request: httpx.Request) -> httpx.Request:
        request.headers.pop("Authorization", None)
        if self._token:
            request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def _login(self) -> Generator[httpx.Request, httpx.Response, None]:
        password = self._password.get_secret_value() if self._password else ""
        response = yield httpx.Request(
            "POST",
            self._login_url,
            json={"email": self._username, "password": password, "remember_me": True},
            extensions={"timeout": TIMEOUT.as_dict()},  # a hand-built request has no client timeout of its own
        )
        if response.status_code in (403, 404):  # single-user server, or one from before multi-user support
            self._login_needed = False
            return
        if response.status_code in (401, 422):
            raise AuthRejected()
        token = _json(response).get("token") if response.status_code == 200 else None
        if not isinstance(token, str) or not token:
            raise InvokeAIRefused(_detail(response))
        self._token = token
        log.info("logged in to InvokeAI as %s", self._username)


# --- the client -----------------------------------------------------------------------------------------------------


class InvokeAIClient:
    """One InvokeAI server; one pooled httpx client for its life. Use `async with`, or `aclose()`."""

    def __init__(
        self,
        url: str,
        username: str = "",
        password: SecretStr | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: httpx.Timeout = TIMEOUT,
    ) -> None:
        self.url = url
        base = httpx.URL(check_url(url))
        base = base.copy_with(path=base.path if base.path.endswith("/") else base.path + "/")
        self._http = httpx.AsyncClient(
            base_url=base,
            timeout=timeout,
            transport=transport,
            auth=_LoginAuth(base.join("api/v1/auth/login"), username, password),
        )
        self._timeout = timeout
        self._info: ServerInfo | None = None

    async def __aenter__(self) -> InvokeAIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            log.info("InvokeAI at %s: %s %s failed: %r", self.url, method, path, exc)
            raise _transport_error(exc) from exc

    # --- probe ------------------------------------------------------------------------------------------------------

    async def info(self) -> ServerInfo:
        """Version and mode, asked once per client (the public routes: no login needed, none attempted)."""
        if self._info is None:
            response = await self._request("GET", "api/v1/app/version", auth=None)
            body = _json(response) if response.status_code == 200 else {}
            version = body.get("version")
            if not isinstance(version, str) or not version:
                raise NotInvokeAI()
            self._info = ServerInfo(version=version, multiuser=await self._multiuser())
        return self._info

    async def _multiuser(self) -> bool:
        response = await self._request("GET", "api/v1/auth/status", auth=None)
        # Servers before multi-user support answer 404: they are single-user.
        return response.status_code == 200 and _json(response).get("multiuser_enabled") is True

    # --- boards and uploads -----------------------------------------------------------------------------------------

    async def boards(self) -> list[Board]:
        """Uncategorized first, then the boards this user may see; a failed login raises (never an empty list)."""
        response = await self._request("GET", "api/v1/boards/", params={"all": "true"})
        _check(response)
        items = _json_value(response)
        if not isinstance(items, list):
            raise NotInvokeAI()
        boards = [
            Board(board_id=item["board_id"], board_name=str(item.get("board_name") or item["board_id"]))
            for item in items
            if isinstance(item, dict) and isinstance(item.get("board_id"), str)
        ]
        return [UNCATEGORIZED, *boards]

    async def board_name(self, board_id: str | None) -> str:
        if board_id is None:
            return UNCATEGORIZED.board_name
        for board in await self.boards():
            if board.board_id == board_id:
                return board.board_name
        raise BoardNotFound()

    async def upload(self, upload: Upload, board_id: str | None) -> str:
        """Put image bytes in the gallery (the board, or Uncategorized); returns InvokeAI's image name."""
        params = {"image_category": "user", "is_intermediate": "false"}
        if board_id is not None:
            params["board_id"] = board_id
        response = await self._request(
            "POST",
            "api/v1/images/upload",
            params=params,
            files={"file": (upload.filename, upload.data, upload.content_type)},
            timeout=httpx.Timeout(UPLOAD_TIMEOUT_S, connect=self._timeout.connect),
        )
        if response.status_code == 404 and board_id is not None:
            raise BoardNotFound()
        _check(response)
        image_name = _json(response).get("image_name")
        if not isinstance(image_name, str):
            raise NotInvokeAI()
        return image_name

    # --- recall -----------------------------------------------------------------------------------------------------

    async def recall(self, body: dict[str, Any], *, strict: bool = False, append: bool = False) -> None:
        """POST the parameters to the default queue; the InvokeAI tab picks them up (the user still presses Invoke)."""
        params = {"strict": "true"} if strict else {"append": "true"} if append else {}
        response = await self._request("POST", f"api/v1/recall/{QUEUE_ID}", params=params, json=body)
        if response.status_code in (404, 405) and _detail(response) in ("Not Found", "Method Not Allowed", ""):
            raise RecallUnsupported((await self.info()).version)
        if response.status_code in (403, 404):
            raise ImagesMissing(_detail(response))
        _check(response)


class ImagesMissing(InvokeAIRefused):
    """403/404 from recall: an image name in the body is not one this user may use on this server."""


async def probe(url: str, *, transport: httpx.AsyncBaseTransport | None = None,
                timeout: httpx.Timeout = TIMEOUT) -> ProbeResult:
    """Check a typed URL: the version and mode on success, else one of DESIGN §4's four messages."""
    try:
        async with InvokeAIClient(url, transport=transport, timeout=timeout) as client:
            info = await client.info()
    except (InvokeAIUrlScheme, InvokeAIUrlHost, BackendUnreachable, NotInvokeAI) as err:
        return ProbeResult(ok=False, message=err.message)
    return ProbeResult(ok=True, version=info.version, multiuser=info.multiuser)


# --- ref image download ---------------------------------------------------------------------------------------------


async def fetch_image(url: str, *, transport: httpx.AsyncBaseTransport | None = None,
                      timeout: httpx.Timeout = TIMEOUT) -> bytes:
    """Download an image the user right-clicked: http(s) only, image types only, size- and redirect-capped."""
    if urlsplit(url.strip()).scheme.lower() not in ("http", "https"):
        raise RefImageInvalid(errors.REF_URL_SCHEME)
    async with httpx.AsyncClient(
        timeout=timeout, follow_redirects=True, max_redirects=REF_MAX_REDIRECTS, transport=transport
    ) as http:
        try:
            async with http.stream("GET", url.strip()) as response:
                if response.status_code != 200:
                    raise RefImageInvalid(f"{errors.REF_DOWNLOAD_FAILED} (HTTP {response.status_code})")
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if not content_type.startswith("image/"):
                    raise RefImageInvalid(errors.REF_NOT_IMAGE)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > REF_MAX_BYTES:
                    raise RefImageTooBig(REF_MAX_BYTES)
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > REF_MAX_BYTES:
                        raise RefImageTooBig(REF_MAX_BYTES)
                return bytes(data)
        except httpx.TooManyRedirects as exc:
            raise RefImageInvalid(errors.REF_TOO_MANY_REDIRECTS) from exc
        except httpx.UnsupportedProtocol as exc:  # a redirect to file:, ftp:, ...
            raise RefImageInvalid(errors.REF_URL_SCHEME) from exc
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise RefImageInvalid(errors.REF_DOWNLOAD_FAILED) from exc


# --- helpers --------------------------------------------------------------------------------------------------------


def _transport_error(exc: httpx.TransportError) -> BackendUnreachable:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return CertificateUntrusted()
        cause = cause.__cause__ or cause.__context__
    return BackendUnreachable()


def _json_value(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json(response: httpx.Response) -> dict[str, Any]:
    value = _json_value(response)
    return value if isinstance(value, dict) else {}


def _detail(response: httpx.Response) -> str:
    """InvokeAI's (FastAPI's) own explanation: `{"detail": "..."}` or a list of validation errors."""
    detail = _json(response).get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        where = ".".join(str(part) for part in detail[0].get("loc", ()) if part != "body")
        return f"{where}: {detail[0].get('msg', '')}" if where else str(detail[0].get("msg", ""))
    return detail if isinstance(detail, str) else ""


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise InvokeAIRefused(_detail(response) or f"HTTP {response.status_code}")
