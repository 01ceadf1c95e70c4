"""The InvokeAI client (DESIGN §4): probe, login, boards, upload, recall.

What the panel's buttons do with it (Recall, Remix, Use as Ref Image) is in `actions.py`; the context menu's download
of a page's image is `fetch.py`, the only other httpx importer.

Every httpx exception and every upstream status code is turned into one of our typed errors here, so callers (API
handlers, the CLI) never see httpx. The base URL is used as the user typed it: a path prefix (a reverse proxy's
`/invoke/`) is kept because httpx appends our relative paths to it.
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

from photomapd.errors import (
    AuthRejected,
    AuthRequired,
    AuthUsernameNotEmail,
    BackendUnreachable,
    BoardNotFound,
    CertificateUntrusted,
    InvokeAIRefused,
    InvokeAIUrlHost,
    InvokeAIUrlScheme,
    NotInvokeAI,
    RecallUnsupported,
)
from photomapd.invokeai.refimage import Upload

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0  # a LAN host that is off should fail fast: the settings hint probes as the user types
READ_TIMEOUT_S = 10.0
UPLOAD_TIMEOUT_S = 30.0  # a large PNG over a slow link; InvokeAI also writes a thumbnail before it answers
TIMEOUT = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
QUEUE_ID = "default"
RECALL_SINCE = (6, 12)
STRICT_SINCE = (6, 13)  # `?strict=true`, `reference_images` and the per-user image check came together
APPEND_SINCE = (6, 14)  # `?append=true`; 6.13 ignores it (and would replace the reference images instead)
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

    @property
    def can_append(self) -> bool:
        return version_tuple(self.version) >= APPEND_SINCE


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

    A single-user server is never sent a login: it validates the name as an email (422) before it says "no login
    needed" (403), so a username like `bob` would read as a rejected login. The client tells the flow the server's
    mode (`multiuser`) from `GET auth/status` before the first request that needs it. The login is yielded as a
    request of the flow itself, so it shares the client's pool and transport.
    """

    requires_response_body = True  # the login answer's token is read inside the flow

    def __init__(self, login_url: httpx.URL, username: str, password: SecretStr | None) -> None:
        self._login_url = login_url
        self._username = username
        self._password = password
        self._token: str | None = None  # memory only, never written anywhere
        self.multiuser = True  # until the client knows: a login is only tried when there is a username anyway

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        fresh = False
        if self._token is None and self.multiuser and self._username:
            yield from self._login()
            fresh = True
        response = yield self._authorize(request)
        if response.status_code != 401:
            return
        self._token = None  # expired or revoked: never sent again, whatever the new login does
        if not self._username:
            raise AuthRequired()
        if not fresh:  # the token expired, the server restarted, or it became multi-user: one login, one retry
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
        if response.status_code == 401:
            raise AuthRejected()
        if response.status_code == 422:  # the name failed the server's email check
            raise AuthUsernameNotEmail() if _detail_about(response, "email") else AuthRejected()
        if response.status_code in (403, 404):  # a disabled account, or a server in single-user mode after all
            raise InvokeAIRefused(_detail(response) or f"HTTP {response.status_code}")
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
        self._auth = _LoginAuth(base.join("api/v1/auth/login"), username, password)
        self._http = httpx.AsyncClient(base_url=base, timeout=timeout, transport=transport, auth=self._auth)
        self._timeout = timeout
        self._info: ServerInfo | None = None

    async def __aenter__(self) -> InvokeAIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, *, public: bool = False, **kwargs: Any) -> httpx.Response:
        """One request; `public` ones (version, auth status) go without login, the others once the mode is known."""
        if public:
            kwargs["auth"] = None
        else:
            self._auth.multiuser = (await self.info()).multiuser
        try:
            return await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            log.info("InvokeAI at %s: %s %s failed: %r", self.url, method, path, exc)
            raise _transport_error(exc) from exc

    # --- probe ------------------------------------------------------------------------------------------------------

    async def info(self) -> ServerInfo:
        """Version and mode, asked once per client (the public routes: no login needed, none attempted)."""
        if self._info is None:
            response = await self._request("GET", "api/v1/app/version", public=True)
            body = _json(response) if response.status_code == 200 else {}
            version = body.get("version")
            if not isinstance(version, str) or not version:
                raise NotInvokeAI()
            self._info = ServerInfo(version=version, multiuser=await self._multiuser())
        return self._info

    async def _multiuser(self) -> bool:
        response = await self._request("GET", "api/v1/auth/status", public=True)
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

    async def recall(
        self, body: dict[str, Any], *, strict: bool = False, append: bool = False
    ) -> dict[str, Any] | None:
        """POST the parameters to the default queue; the InvokeAI tab picks them up (the user still presses Invoke).

        Returns the `parameters` the server says it kept (model names resolved to keys; unknown models and missing
        images left out, silently), or None when the answer doesn't say.
        """
        params = {"strict": "true"} if strict else {"append": "true"} if append else {}
        response = await self._request("POST", f"api/v1/recall/{QUEUE_ID}", params=params, json=body)
        if response.status_code in (404, 405) and _detail(response) in ("Not Found", "Method Not Allowed", ""):
            raise RecallUnsupported((await self.info()).version)
        if response.status_code == 403:
            raise ImagesMissing(_detail(response))
        _check(response)
        kept = _json(response).get("parameters")
        return kept if isinstance(kept, dict) else None


class ImagesMissing(InvokeAIRefused):
    """403 from recall (6.13+, a user who is not an admin): an image named in the body is not one this user may use,
    because that server doesn't have it or it is in another user's private board (the server doesn't say which)."""


async def probe(url: str, *, transport: httpx.AsyncBaseTransport | None = None,
                timeout: httpx.Timeout = TIMEOUT) -> ProbeResult:
    """Check a typed URL: the version and mode on success, else one of DESIGN §4's four messages."""
    try:
        async with InvokeAIClient(url, transport=transport, timeout=timeout) as client:
            info = await client.info()
    except (InvokeAIUrlScheme, InvokeAIUrlHost, BackendUnreachable, NotInvokeAI) as err:
        return ProbeResult(ok=False, message=err.message)
    return ProbeResult(ok=True, version=info.version, multiuser=info.multiuser)


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


def _detail_about(response: httpx.Response, field: str) -> bool:
    """Whether a FastAPI 422 names `field` among the values it rejected."""
    detail = _json(response).get("detail")
    return isinstance(detail, list) and any(
        isinstance(item, dict) and field in (item.get("loc") or []) for item in detail
    )


def _check(response: httpx.Response) -> None:
    if response.status_code >= 400:
        raise InvokeAIRefused(_detail(response) or f"HTTP {response.status_code}")
