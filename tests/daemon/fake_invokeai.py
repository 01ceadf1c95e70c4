"""A fake InvokeAI server true to DESIGN §4's contract, for the daemon's tests and the extension's browser tests.

It is written from the real server, not from our client: checked against InvokeAI 6.14.2 (its /openapi.json and its
answers, see tests/daemon/invokeai/test_real_invokeai.py) and the 6.12/6.13 sources. So a test passing against it
means the client speaks the real server's language:

- the recall model forbids unknown fields and checks ranges; 422s have FastAPI's shape (`type`, `loc`, `msg`,
  `input`); `strict` exists from 6.13 and `append` from 6.14 (older servers ignore query parameters they lack);
- a recall answers with the `parameters` it kept: model names resolved to keys (unknown models dropped), image
  layers as `{"image": {image_name, width, height}}`; images the server doesn't have are dropped silently on a
  single-user server or for an admin, and refused with 403 for other users (6.13+; also another user's image in a
  private board);
- login validates the email before anything else (422, even on a single-user server), then answers 403 in
  single-user mode, 401 for wrong credentials; multi-user mode answers 401 to every other route without a token.

Use it in pytest: `server = await aiohttp_server(FakeInvokeAI(version="6.14.2").app())`. Or standalone:
`python tests/daemon/fake_invokeai.py --port 9090 [--multiuser] [--version 6.14.2]` prints its URL; every request
it saw is listed at `GET /__test__/requests` (passwords masked), `POST /__test__/expire-tokens` forgets all tokens.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import secrets
import uuid
from typing import Any, Literal, Optional

from aiohttp import web
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

DEFAULT_USERS = {"alice@example.com": "correct horse battery staple"}
IMAGE_CATEGORIES = {"general", "mask", "control", "user", "other"}
PUBLIC_PATHS = {"/api/v1/app/version", "/api/v1/auth/status", "/api/v1/auth/login"}
SINGLE_USER_LOGIN = "Multiuser mode is disabled. Authentication is not required in single-user mode."
TOKEN_EXPIRES_S = 7 * 24 * 3600  # the real server's "remember me" lifetime
IMAGE_LISTS = ("control_layers", "ip_adapters", "reference_images")
UPLOAD_MAX_BYTES = 256 * 1024 * 1024


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
    image_influence: Optional[Literal["lowest", "low", "medium", "high", "highest"]] = None  # FLUX Redux


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
    refiner_steps: Optional[int] = Field(None, ge=0)
    cfg_scale: Optional[float] = None
    cfg_rescale_multiplier: Optional[float] = None
    refiner_cfg_scale: Optional[float] = None
    guidance: Optional[float] = None
    width: Optional[int] = Field(None, ge=64)
    height: Optional[int] = Field(None, ge=64)
    seed: Optional[int] = Field(None, ge=0)
    denoise_strength: Optional[float] = Field(None, ge=0, le=1)
    refiner_denoise_start: Optional[float] = Field(None, ge=0, le=1)
    clip_skip: Optional[int] = Field(None, ge=0)
    seamless_x: Optional[bool] = None
    seamless_y: Optional[bool] = None
    refiner_positive_aesthetic_score: Optional[float] = None
    refiner_negative_aesthetic_score: Optional[float] = None
    loras: Optional[list[_Lora]] = None
    control_layers: Optional[list[_Control]] = None
    ip_adapters: Optional[list[_IPAdapter]] = None


class Recall613(Recall612):
    reference_images: Optional[list[_RefImage]] = None


def _email(value: str) -> str:
    """The real server's email check (email-validator, then its own rule for special-use domains), its messages."""
    if "@" not in value:
        raise PydanticCustomError("value_error", "Invalid email address: An email address must have an @-sign.")
    local, domain = value.rsplit("@", 1)
    if not local:
        raise PydanticCustomError("value_error", "Invalid email address: There must be something before the @-sign.")
    if not domain:
        raise PydanticCustomError("value_error", "Invalid email address: There must be something after the @-sign.")
    if " " in local:
        raise PydanticCustomError("value_error", "Invalid email address: The email address contains invalid "
                                                 "characters before the @-sign: SPACE.")
    if domain.lower() != "localhost" and "." not in domain:
        raise PydanticCustomError("value_error", "Email domain must contain a dot or be 'localhost'")
    return f"{local}@{domain.lower()}"  # email-validator normalizes the domain, not the local part


class _Login(BaseModel):
    email: str
    password: str
    remember_me: bool = False

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return _email(value)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _fastapi_422(err: ValidationError, where: str = "body") -> web.Response:
    """FastAPI's validation answer: one entry per error, `loc` prefixed with where the value came from."""
    detail = []
    for entry in json.loads(err.json(include_url=False)):
        item = {"type": entry["type"], "loc": [where, *entry["loc"]], "msg": entry["msg"], "input": entry["input"]}
        if entry.get("ctx"):
            item["ctx"] = entry["ctx"]
        detail.append(item)
    return web.json_response({"detail": detail}, status=422)


async def _json_body(request: web.Request, model: type[BaseModel]) -> BaseModel | web.Response:
    """The body validated into `model`, or the 422 FastAPI would answer (bad JSON included)."""
    try:
        value = json.loads(await request.read())
    except json.JSONDecodeError as exc:  # FastAPI's own shape for it: where, and the decoder's words
        detail = [{"type": "json_invalid", "loc": ["body", exc.pos], "msg": "JSON decode error", "input": {},
                   "ctx": {"error": exc.msg}}]
        return web.json_response({"detail": detail}, status=422)
    try:
        return model.model_validate(value)
    except ValidationError as err:
        return _fastapi_422(err)


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
        admins: set[str] | frozenset[str] = frozenset(),
        models: set[str] | None = None,
        has_auth_routes: bool = True,
    ) -> None:
        self.version = version
        self.multiuser = multiuser
        self.has_auth_routes = has_auth_routes  # False: a server from before multi-user support (auth routes 404)
        self.users = dict(DEFAULT_USERS if users is None else users)
        self.admins = set(admins)  # emails of admin users: they may use every image
        self.models = models  # model names installed; None: every name resolves (a server with everything)
        self.tokens: dict[str, str] = {}  # token -> email
        self.boards: dict[str, dict[str, Any]] = {}  # board_id -> {board_name, owner, shared}
        self.images: dict[str, dict[str, Any]] = {}  # image_name -> {board_id, owner, content_type, size, data, ...}
        self.requests: list[dict[str, Any]] = []
        self.recalls: list[dict[str, Any]] = []  # accepted recalls: queue_id, query, body sent, parameters kept
        self.logins = 0
        self._stamp = 0  # created_at of added images: one second apart, in order

    @property
    def has_recall(self) -> bool:
        return _version(self.version) >= (6, 12)

    @property
    def has_strict(self) -> bool:
        """`reference_images`, `?strict=` and the per-user image check came in 6.13."""
        return _version(self.version) >= (6, 13)

    @property
    def has_append(self) -> bool:
        return _version(self.version) >= (6, 14)

    def add_board(self, name: str, owner: str | None = None, *, shared: bool = False) -> str:
        board_id = str(uuid.uuid4())
        self.boards[board_id] = {"board_name": name, "owner": owner, "shared": shared}
        return board_id

    def add_image(self, image_name: str, owner: str | None = None, board_id: str | None = None, *,
                  data: bytes = b"", starred: bool = False, is_intermediate: bool = False) -> None:
        """An image on the server as if InvokeAI had just finished it (`data`: a PNG; its size is read from it)."""
        width = height = 64
        if data:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
        self._stamp += 1
        now = f"2026-12-01 12:{self._stamp // 60 % 60:02d}:{self._stamp % 60:02d}.000"
        self.images[image_name] = {"board_id": board_id, "owner": owner, "content_type": "image/png",
                                   "size": len(data), "data": data, "width": width, "height": height,
                                   "starred": starred, "is_intermediate": is_intermediate, "category": "general",
                                   "created_at": now, "updated_at": now}

    def delete_image(self, image_name: str) -> None:
        del self.images[image_name]

    def expire_tokens(self) -> None:
        self.tokens.clear()

    def app(self) -> web.Application:
        # The real server takes uploads of any size (FastAPI sets no limit); aiohttp's default would refuse > 1 MB.
        app = web.Application(
            middlewares=[self._log_middleware, self._auth_middleware], client_max_size=UPLOAD_MAX_BYTES
        )
        app.router.add_get("/api/v1/app/version", self._version_route)
        if self.has_auth_routes:
            app.router.add_get("/api/v1/auth/status", self._auth_status)
            app.router.add_post("/api/v1/auth/login", self._login)
        app.router.add_get("/api/v1/boards/", self._boards)
        app.router.add_post("/api/v1/boards/", self._create_board)
        app.router.add_post("/api/v1/images/upload", self._upload)
        app.router.add_get("/api/v1/images/i/{image_name}/full", self._image_full)
        app.router.add_get("/api/v1/images/i/{image_name}/thumbnail", self._image_thumbnail)
        app.router.add_get("/api/v1/images/i/{image_name}/metadata", self._image_metadata)
        app.router.add_get("/api/v1/images/i/{image_name}", self._image_dto_route)
        app.router.add_get("/api/v1/images/names", self._image_names)
        app.router.add_get("/api/v1/images/", self._list_images)
        app.router.add_post("/api/v1/images/images_by_names", self._images_by_names)
        app.router.add_post("/api/v1/images/star", self._star)
        app.router.add_post("/api/v1/images/unstar", self._unstar)
        app.router.add_post("/api/v1/board_images/batch", self._add_to_board)
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
                detail = "Authentication required" if not header else "Invalid or expired token"
                return web.json_response({"detail": detail}, status=401)
        return await handler(request)

    def _user(self, request: web.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        return self.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None

    # --- routes -----------------------------------------------------------------------------------------------------

    async def _version_route(self, request: web.Request) -> web.Response:
        return web.json_response({"version": self.version, "highlights": []})

    async def _auth_status(self, request: web.Request) -> web.Response:
        return web.json_response({"setup_required": False, "multiuser_enabled": self.multiuser,
                                  "strict_password_checking": False, "admin_email": None})

    async def _login(self, request: web.Request) -> web.Response:
        # FastAPI validates the body (the email included) before the handler looks at the mode.
        login = await _json_body(request, _Login)
        if isinstance(login, web.Response):
            return login
        assert isinstance(login, _Login)
        if not self.multiuser:
            return web.json_response({"detail": SINGLE_USER_LOGIN}, status=403)
        self.logins += 1
        if self.users.get(login.email) != login.password:
            return web.json_response({"detail": "Incorrect email or password"}, status=401)
        token = secrets.token_urlsafe(24)
        self.tokens[token] = login.email
        user = {"user_id": login.email, "email": login.email, "display_name": None,
                "is_admin": login.email in self.admins, "is_active": True}
        return web.json_response({"token": token, "user": user, "expires_in": TOKEN_EXPIRES_S})

    def _visible_boards(self, request: web.Request) -> list[tuple[str, dict[str, Any]]]:
        user = self._user(request)
        return [(bid, b) for bid, b in self.boards.items()
                if not self.multiuser or b["owner"] in (None, user) or b["shared"]]

    async def _boards(self, request: web.Request) -> web.Response:
        boards = [
            {"board_id": bid, "board_name": b["board_name"], "created_at": "2026-01-01T00:00:00", "image_count": 0}
            for bid, b in self._visible_boards(request)
        ]
        if request.query.get("all", "").lower() == "true":
            return web.json_response(boards)
        return web.json_response({"items": boards, "offset": 0, "limit": 10, "total": len(boards)})

    async def _create_board(self, request: web.Request) -> web.Response:
        name = request.query.get("board_name")
        if name is None:
            return _missing_query("board_name")
        board_id = self.add_board(name, owner=self._user(request))
        return web.json_response({"board_id": board_id, "board_name": name, "user_id": self._user(request) or "system",
                                  "created_at": "2026-12-01 12:00:00.000", "updated_at": "2026-12-01 12:00:00.000",
                                  "deleted_at": None, "cover_image_name": None, "archived": False,
                                  "board_visibility": "private", "cover_video_name": None, "image_count": 0,
                                  "video_count": 0, "asset_count": 0, "owner_username": None}, status=201)

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
        self.add_image(image_name, self._user(request), board_id, data=data,
                       is_intermediate=request.query["is_intermediate"].lower() in ("true", "1"))
        self.images[image_name].update(content_type=field.content_type, filename=field.filename,
                                       category=request.query["image_category"])
        self.requests[-1]["upload"] = {"filename": field.filename, "content_type": field.content_type,
                                       "size": len(data), "image_name": image_name}
        dto = {"image_name": image_name, "image_url": f"api/v1/images/i/{image_name}/full", "width": width,
               "height": height, "board_id": board_id, "image_category": request.query["image_category"],
               "is_intermediate": request.query["is_intermediate"].lower() in ("true", "1")}
        return web.json_response(dto, status=201)

    async def _image_full(self, request: web.Request) -> web.Response:
        name, error = self._image_or_error(request)  # 404 "Not Found" single-user, "Image not found" multi-user
        if error is not None:
            return error
        image = self.images[name]
        return web.Response(body=image["data"], content_type=image["content_type"])

    # --- board albums: listing, files, stars, board membership (as the real 6.14.2 answers) -------------------------

    def _dto(self, image_name: str) -> dict[str, Any]:
        image = self.images[image_name]
        return {"image_name": image_name, "image_url": f"api/v1/images/i/{image_name}/full",
                "thumbnail_url": f"api/v1/images/i/{image_name}/thumbnail", "image_origin": "external",
                "image_category": image.get("category", "general"), "width": image["width"],
                "height": image["height"], "created_at": image.get("created_at", "2026-01-01 00:00:00.000"),
                "updated_at": image.get("updated_at", "2026-01-01 00:00:00.000"), "deleted_at": None,
                "is_intermediate": image.get("is_intermediate", False), "session_id": None, "node_id": None,
                "starred": image.get("starred", False), "has_workflow": False, "image_subfolder": "",
                "board_id": image["board_id"]}

    def _sees_image(self, request: web.Request, image_name: str) -> bool:
        """Multi-user: a user lists their own images and those in shared boards (an admin every one)."""
        return image_name in self.images and not self._may_not_use(request, image_name)

    def _image_or_error(self, request: web.Request) -> tuple[str, web.Response | None]:
        name = request.match_info["image_name"]
        if name not in self.images:
            detail = "Image not found" if self.multiuser else "Not Found"
            return name, web.json_response({"detail": detail}, status=404)
        if self._may_not_use(request, name):
            return name, web.json_response({"detail": "Not authorized to access this image"}, status=403)
        return name, None

    async def _image_thumbnail(self, request: web.Request) -> web.Response:
        name, error = self._image_or_error(request)
        if error is not None:
            return error
        with Image.open(io.BytesIO(self.images[name]["data"])) as image:
            image.thumbnail((256, 256))
            out = io.BytesIO()
            image.convert("RGB").save(out, format="WEBP")
        return web.Response(body=out.getvalue(), content_type="image/webp")

    async def _image_metadata(self, request: web.Request) -> web.Response:
        name, error = self._image_or_error(request)
        if error is not None:
            return error
        with Image.open(io.BytesIO(self.images[name]["data"])) as image:
            text = image.info.get("invokeai_metadata")
        return web.json_response(json.loads(text) if isinstance(text, str) else None)

    async def _image_dto_route(self, request: web.Request) -> web.Response:
        name, error = self._image_or_error(request)
        return error if error is not None else web.json_response(self._dto(name))

    def _board_refusal(self, request: web.Request, board_id: str, *, modify: bool = False) -> web.Response | None:
        """Another user's private board: 403; a board that doesn't exist: 404 multi-user (single-user: none)."""
        board = self.boards.get(board_id)
        if board is None:
            return web.json_response({"detail": "Board not found"}, status=404) if self.multiuser or modify else None
        user = self._user(request)
        if self.multiuser and user not in self.admins and board["owner"] not in (None, user) and not board["shared"]:
            verb = "modify" if modify else "access"
            return web.json_response({"detail": f"Not authorized to {verb} this board"}, status=403)
        return None

    async def _image_names(self, request: web.Request) -> web.Response:
        board = request.query.get("board_id")
        if board is not None and board != "none":
            refusal = self._board_refusal(request, board)
            if refusal is not None:
                return refusal
        wanted = request.query.get("is_intermediate")
        starred_first = request.query.get("starred_first", "true").lower() == "true"
        names = [name for name, image in self.images.items()
                 if self._sees_image(request, name)
                 and (board is None or image["board_id"] == (None if board == "none" else board))
                 and (wanted is None or image.get("is_intermediate", False) == (wanted.lower() == "true"))]
        names.sort(key=lambda name: self.images[name].get("created_at", ""), reverse=True)  # newest first
        starred = [name for name in names if self.images[name].get("starred")]
        if starred_first:
            names = starred + [name for name in names if name not in starred]
        return web.json_response({"image_names": names, "starred_count": len(starred) if starred_first else 0,
                                  "total_count": len(names)})

    async def _list_images(self, request: web.Request) -> web.Response:
        """`GET /api/v1/images/`: ImageDTO pages, same filters and order as the names route."""
        names = await self._image_names(request)
        if names.status != 200:
            return names
        listed = json.loads(names.body)["image_names"]  # type: ignore[arg-type]
        if request.query.get("order_dir", "DESC") == "ASC":
            listed.reverse()
        offset, limit = int(request.query.get("offset", "0")), int(request.query.get("limit", "10"))
        page = listed[offset : offset + limit]
        return web.json_response({"limit": limit, "offset": offset, "total": len(listed),
                                  "items": [self._dto(name) for name in page]})

    async def _names_body(self, request: web.Request) -> list[str] | web.Response:
        class _Names(BaseModel):
            image_names: list[str] = Field(max_length=1000)

        body = await _json_body(request, _Names)
        return body if isinstance(body, web.Response) else body.image_names  # type: ignore[attr-defined]

    async def _images_by_names(self, request: web.Request) -> web.Response:
        names = await self._names_body(request)
        if isinstance(names, web.Response):
            return names
        return web.json_response([self._dto(name) for name in names if self._sees_image(request, name)])

    async def _set_star(self, request: web.Request, starred: bool) -> web.Response:
        names = await self._names_body(request)
        if isinstance(names, web.Response):
            return names
        done = [name for name in names if self._sees_image(request, name)]
        for name in done:
            self.images[name]["starred"] = starred
        boards = sorted({self.images[name]["board_id"] or "none" for name in done})
        key = "starred_images" if starred else "unstarred_images"
        return web.json_response({"affected_boards": boards, key: done, "failed_images": []})

    async def _star(self, request: web.Request) -> web.Response:
        return await self._set_star(request, True)

    async def _unstar(self, request: web.Request) -> web.Response:
        return await self._set_star(request, False)

    async def _add_to_board(self, request: web.Request) -> web.Response:
        class _BoardNames(BaseModel):
            board_id: str
            image_names: list[str] = Field(max_length=1000)

        body = await _json_body(request, _BoardNames)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, _BoardNames)
        refusal = self._board_refusal(request, body.board_id, modify=True)
        if refusal is not None:
            return refusal
        added = [name for name in body.image_names if self._sees_image(request, name)]
        moved_from = {self.images[name]["board_id"] or "none" for name in added}
        boards = sorted(moved_from | {body.board_id}) if added else []
        for name in added:
            self.images[name]["board_id"] = body.board_id
        return web.json_response({"affected_boards": boards, "added_images": added, "failed_images": []}, status=201)

    def _may_not_use(self, request: web.Request, image_name: str) -> bool:
        """Multi-user only, not for admins: another user's image outside a shared board (or no such image)."""
        user = self._user(request)
        if not self.multiuser or user in self.admins:
            return False
        image = self.images.get(image_name)
        if image is None:
            return True
        board = self.boards.get(image["board_id"] or "")
        return image["owner"] not in (None, user) and not (board and board["shared"])

    async def _recall(self, request: web.Request) -> web.Response:
        model = Recall613 if self.has_strict else Recall612
        params = await _json_body(request, model)
        if isinstance(params, web.Response):
            return params
        # Servers ignore query parameters they don't declare: 6.12 has no strict, 6.13 no append.
        strict = self.has_strict and request.query.get("strict", "").lower() == "true"
        append = self.has_append and request.query.get("append", "").lower() == "true"
        if strict and append:
            return web.json_response(
                {"detail": "The 'strict' and 'append' query parameters are mutually exclusive"}, status=400)
        sent = params.model_dump(exclude_none=True)
        if self.has_strict:
            for name in _image_names(sent):
                if self._may_not_use(request, name):
                    return web.json_response({"detail": f"Not authorized to access image {name}"}, status=403)
        if strict:  # every field, so the panel clears what was not sent; lists as [] rather than null
            provided = {key: ([] if value is None and key in ("loras", *IMAGE_LISTS) else value)
                        for key, value in params.model_dump().items()}
        else:
            provided = sent
        queue_id = request.match_info["queue_id"]
        kept = self._resolve(provided)
        self.recalls.append({"queue_id": queue_id, "query": dict(request.query), "body": sent, "parameters": kept})
        if not provided:
            return web.json_response({"status": "no_parameters_provided", "updated_count": 0})
        if append:
            kept = {**kept, "append": True}
        return web.json_response(
            {"status": "success", "queue_id": queue_id, "updated_count": len(provided), "parameters": kept})

    def _model_key(self, name: str) -> str | None:
        return f"key-{name}" if self.models is None or name in self.models else None

    def _image(self, image_name: str | None) -> dict[str, Any] | None:
        image = self.images.get(image_name or "")
        if image is None:
            return None
        return {"image_name": image_name, "width": image["width"], "height": image["height"]}

    def _resolve(self, provided: dict[str, Any]) -> dict[str, Any]:
        """What the real server answers: names resolved to model keys, unknown models and missing images dropped."""
        kept = dict(provided)
        if isinstance(kept.get("model"), str):
            key = self._model_key(kept["model"])
            if key is None:
                del kept["model"]
            else:
                kept["model"] = key
        if kept.get("loras"):
            kept["loras"] = [{"model_key": self._model_key(lora["model_name"]), "weight": lora["weight"],
                              "is_enabled": lora["is_enabled"]}
                             for lora in kept["loras"] if self._model_key(lora["model_name"])]
        for name in ("control_layers", "ip_adapters"):
            if kept.get(name):
                kept[name] = [self._adapter(item) for item in kept[name] if self._model_key(item["model_name"])]
        if kept.get("reference_images"):
            images = (self._image(ref["image_name"]) for ref in kept["reference_images"])
            kept["reference_images"] = [{"image": image} for image in images if image is not None]
        return kept

    def _adapter(self, item: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {"model_key": self._model_key(item["model_name"]), "weight": item["weight"]}
        image = self._image(item.get("image_name"))
        if image is not None:
            config["image"] = image
        for key in ("begin_step_percent", "end_step_percent", "control_mode", "method", "image_influence"):
            if item.get(key) is not None:
                config[key] = item[key]
        return config

    async def _test_requests(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests, "recalls": self.recalls})

    async def _test_expire(self, request: web.Request) -> web.Response:
        self.expire_tokens()
        return web.json_response({"ok": True})


def _image_names(body: dict[str, Any]) -> list[str]:
    return [
        item["image_name"]
        for key in IMAGE_LISTS
        for item in body.get(key) or []
        if item.get("image_name")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description="A fake InvokeAI server for PhotoMap's tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--version", default="6.14.2", help="the version it reports (recall needs ≥ 6.12)")
    parser.add_argument("--multiuser", action="store_true", help=f"require a login (user {next(iter(DEFAULT_USERS))})")
    parser.add_argument("--admin", action="store_true", help="make that user an admin (may use every image)")
    parser.add_argument("--board", action="append", default=[], help="a board to create (repeatable)")
    args = parser.parse_args()
    fake = FakeInvokeAI(args.version, multiuser=args.multiuser,
                        admins=set(DEFAULT_USERS) if args.admin else frozenset())
    for name in args.board:
        fake.add_board(name)
    print(f"http://{args.host}:{args.port}", flush=True)
    web.run_app(fake.app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
