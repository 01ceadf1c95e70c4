"""A fake InvokeAI server true to DESIGN §4's contract, for the daemon's tests and the extension's browser tests.

It is written from the contract, not from our client, so a test passing against it means the client speaks the
real server's language: the recall route forbids unknown fields and checks ranges like the server's pydantic model,
uploads need `image_category` and `is_intermediate`, multi-user mode answers 401 to every route without a token.

Use it in pytest: `server = await aiohttp_server(FakeInvokeAI(version="6.14.2").app())`. Or standalone:
`python tests/daemon/fake_invokeai.py --port 9090 [--multiuser] [--version 6.14.2]` prints its URL; every request
it saw is listed at `GET /__test__/requests` (passwords masked), `POST /__test__/expire-tokens` forgets all tokens.
"""

from __future__ import annotations

import argparse
import io
import re
import secrets
import uuid
from typing import Any, Literal, Optional

from aiohttp import web
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_USERS = {"alice@example.com": "correct horse battery staple"}
IMAGE_CATEGORIES = {"general", "mask", "control", "user", "other"}
PUBLIC_PATHS = {"/api/v1/app/version", "/api/v1/auth/status", "/api/v1/auth/login"}


# --- the recall route's body, as the server's model declares it -----------------------------------------------------


class _Lora(BaseModel):
    model_name: str
    weight: float = Field(default=0.75, ge=-10, le=10)
    is_enabled: bool = True


class _Control(BaseModel):
    model_name: str
    image_name: Optional[str] = None
    weight: float = Field(default=1.0, ge=-1, le=2)
    begin_step_percent: Optional[float] = Field(default=None, ge=0, le=1)
    end_step_percent: Optional[float] = Field(default=None, ge=0, le=1)
    control_mode: Optional[Literal["balanced", "more_prompt", "more_control"]] = None


class _IPAdapter(BaseModel):
    model_name: str
    image_name: Optional[str] = None
    weight: float = Field(default=1.0, ge=-1, le=2)
    begin_step_percent: Optional[float] = Field(default=None, ge=0, le=1)
    end_step_percent: Optional[float] = Field(default=None, ge=0, le=1)
    method: Optional[Literal["full", "style", "composition"]] = None


class _RefImage(BaseModel):
    image_name: str


class Recall612(BaseModel):
    model_config = ConfigDict(extra="forbid")

    positive_prompt: Optional[str] = None
    negative_prompt: Optional[str] = None
    model: Optional[str] = None
    refiner_model: Optional[str] = None
    vae_model: Optional[str] = None
    scheduler: Optional[str] = None
    steps: Optional[int] = Field(None, ge=1)
    cfg_scale: Optional[float] = None
    guidance: Optional[float] = None
    width: Optional[int] = Field(None, ge=64)
    height: Optional[int] = Field(None, ge=64)
    seed: Optional[int] = Field(None, ge=0)
    denoise_strength: Optional[float] = Field(None, ge=0, le=1)
    clip_skip: Optional[int] = Field(None, ge=0)
    seamless_x: Optional[bool] = None
    seamless_y: Optional[bool] = None
    loras: Optional[list[_Lora]] = None
    control_layers: Optional[list[_Control]] = None
    ip_adapters: Optional[list[_IPAdapter]] = None


class Recall613(Recall612):
    reference_images: Optional[list[_RefImage]] = None


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _fastapi_422(err: ValidationError, where: str = "body") -> web.Response:
    detail = [{"type": e["type"], "loc": [where, *e["loc"]], "msg": e["msg"]} for e in err.errors()]
    return web.json_response({"detail": detail}, status=422)


def _missing_query(name: str) -> web.Response:
    detail = [{"type": "missing", "loc": ["query", name], "msg": "Field required"}]
    return web.json_response({"detail": detail}, status=422)


class FakeInvokeAI:
    """One fake server's state: users, tokens, boards, images, and a log of what it received."""

    def __init__(
        self,
        version: str = "6.14.2",
        *,
        multiuser: bool = False,
        users: dict[str, str] | None = None,
        has_auth_routes: bool = True,
    ) -> None:
        self.version = version
        self.multiuser = multiuser
        self.has_auth_routes = has_auth_routes  # False: a server from before multi-user support (auth routes 404)
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.tokens: dict[str, str] = {}  # token -> email
        self.boards: dict[str, dict[str, Any]] = {}  # board_id -> {board_name, owner}
        self.images: dict[str, dict[str, Any]] = {}  # image_name -> {board_id, owner, content_type, size}
        self.requests: list[dict[str, Any]] = []
        self.recalls: list[dict[str, Any]] = []  # accepted recall bodies, with their query
        self.logins = 0

    @property
    def has_recall(self) -> bool:
        return _version(self.version) >= (6, 12)

    @property
    def has_strict(self) -> bool:
        return _version(self.version) >= (6, 13)

    def add_board(self, name: str, owner: str | None = None) -> str:
        board_id = str(uuid.uuid4())
        self.boards[board_id] = {"board_name": name, "owner": owner}
        return board_id

    def add_image(self, image_name: str, owner: str | None = None) -> None:
        self.images[image_name] = {"board_id": None, "owner": owner, "content_type": "image/png", "size": 0}

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._log_middleware, self._auth_middleware])
        app.router.add_get("/api/v1/app/version", self._version_route)
        if self.has_auth_routes:
            app.router.add_get("/api/v1/auth/status", self._auth_status)
            app.router.add_post("/api/v1/auth/login", self._login)
        app.router.add_get("/api/v1/boards/", self._boards)
        app.router.add_post("/api/v1/images/upload", self._upload)
        if self.has_recall:
            app.router.add_post("/api/v1/recall/{queue_id}", self._recall)
        app.router.add_get("/__test__/requests", self._test_requests)
        app.router.add_post("/__test__/expire-tokens", self._test_expire)
        return app

    # --- middlewares ------------------------------------------------------------------------------------------------

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/__test__/"):
            entry: dict[str, Any] = {"method": request.method, "path": request.path, "query": dict(request.query)}
            entry["authorization"] = request.headers.get("Authorization")
            self.requests.append(entry)
        return await handler(request)

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.multiuser and request.path not in PUBLIC_PATHS and not request.path.startswith("/__test__/"):
            header = request.headers.get("Authorization", "")
            if self._user(request) is None:
                detail = "Not authenticated" if not header else "Could not validate credentials"
                return web.json_response({"detail": detail}, status=401)
        return await handler(request)

    def _user(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return self.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None

    # --- routes -----------------------------------------------------------------------------------------------------

    async def _version_route(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.version, "highlights": []})

    async def _auth_status(self, request: web.Request) -> web.Response:
        return web.json_response({"multiuser_enabled": self.multiuser, "setup_required": False, "user": None})

    async def _login(self, request: web.Request) -> web.Response:
        if not self.multiuser:
            return web.json_response({"detail": "Multiuser mode is disabled; no login is needed"}, status=403)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("email"), str) or "password" not in body:
            return web.json_response({"detail": [{"loc": ["body"], "msg": "Field required"}]}, status=422)
        self.logins += 1
        if self.users.get(body["email"]) != body["password"]:
            return web.json_response({"detail": "Incorrect email or password"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = body["email"]
        user = {"user_id": body["email"], "email": body["email"], "is_admin": False}
        return web.json_response({"token": token, "user": user, "expires_in": 604800})

    def _visible_boards(self, request: web.Request) -> list[tuple[str, dict[str, Any]]]:
        user = self._user(request)
        return [(bid, b) for bid, b in self.boards.items() if not self.multiuser or b["owner"] in (None, user)]

    async def _boards(self, request: web.Request) -> web.Response:
        boards = [
            {"board_id": bid, "board_name": b["board_name"], "created_at": "2026-01-01T00:00:00", "image_count": 0}
            for bid, b in self._visible_boards(request)
        ]
        if request.query.get("all", "").lower() == "true":
            return web.json_response(boards)
        return web.json_response({"items": boards, "offset": 0, "limit": 10, "total": len(boards)})

    async def _upload(self, request: web.Request) -> web.Response:
        for name in ("image_category", "is_intermediate"):
            if name not in request.query:
                return _missing_query(name)
        if request.query["image_category"] not in IMAGE_CATEGORIES:
            return web.json_response({"detail": [{"loc": ["query", "image_category"], "msg": "bad enum"}]}, 422)
        if request.query["is_intermediate"].lower() not in ("true", "false", "1", "0"):
            return web.json_response({"detail": [{"loc": ["query", "is_intermediate"], "msg": "not a bool"}]}, 422)
        board_id = request.query.get("board_id")
        if board_id is not None and board_id not in dict(self._visible_boards(request)):
            return web.json_response({"detail": "Board not found"}, status=404)
        form = await request.post()
        field = form.get("file")
        if not isinstance(field, web.FileField):
            return web.json_response({"detail": [{"loc": ["body", "file"], "msg": "Field required"}]}, status=422)
        if not field.content_type.startswith("image"):
            return web.json_response({"detail": "Not an image"}, status=415)
        data = field.file.read()
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        except OSError:
            return web.json_response({"detail": "Failed to read image"}, status=415)
        image_name = f"{uuid.uuid4()}.png"
        self.images[image_name] = {
            "board_id": board_id,
            "owner": self._user(request),
            "content_type": field.content_type,
            "size": len(data),
            "filename": field.filename,
        }
        self.requests[-1]["upload"] = {"filename": field.filename, "content_type": field.content_type,
                                       "size": len(data), "image_name": image_name}
        dto = {"image_name": image_name, "image_url": f"api/v1/images/i/{image_name}/full", "width": width,
               "height": height, "board_id": board_id, "image_category": request.query["image_category"],
               "is_intermediate": request.query["is_intermediate"].lower() in ("true", "1")}
        return web.json_response(dto, status=201)

    async def _recall(self, request: web.Request) -> web.Response:
        strict = request.query.get("strict", "").lower() == "true"
        append = request.query.get("append", "").lower() == "true"
        if self.has_strict and strict and append:
            return web.json_response({"detail": "strict and append cannot be used together"}, status=400)
        model = Recall613 if self.has_strict else Recall612
        try:
            params = model.model_validate_json(await request.read())
        except ValidationError as err:
            return _fastapi_422(err)
        body = params.model_dump(exclude_none=True)
        for name in _image_names(body):
            image = self.images.get(name)
            if image is None:
                return web.json_response({"detail": f"Image not found: {name}"}, status=404)
            if self.multiuser and image["owner"] not in (None, self._user(request)):
                return web.json_response({"detail": f"Not allowed to use image {name}"}, status=403)
        self.recalls.append({"queue_id": request.match_info["queue_id"], "query": dict(request.query), "body": body})
        return web.json_response(
            {"status": "success", "queue_id": request.match_info["queue_id"], "updated_count": len(body),
             "parameters": body}
        )

    async def _test_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "recalls": self.recalls})

    async def _test_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"ok": True})


def _image_names(body: dict[str, Any]) -> list[str]:
    return [
        item["image_name"]
        for key in ("control_layers", "ip_adapters", "reference_images")
        for item in body.get(key) or []
        if item.get("image_name")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake InvokeAI server for PhotoMap's tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--version", default="6.14.2", help="the version it reports (recall needs ≥ 6.12)")
    parser.add_argument("--multiuser", action="store_true", help=f"require a login (user {next(iter(DEFAULT_USERS))})")
    parser.add_argument("--board", action="append", default=[], help="a board to create (repeatable)")
    args = parser.parse_args()
    fake = FakeInvokeAI(args.version, multiuser=args.multiuser)
    for name in args.board:
        fake.add_board(name)
    print(f"http://{args.host}:{args.port}", flush=True)
    web.run_app(fake.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
