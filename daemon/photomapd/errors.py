"""Typed errors: every message a user can see lives here, once.

Domain code raises these; the API's error middleware renders `{"error": {"code", "message"}}` with `status`, and
`cli.py` prints `message` on one line and exits with `exit_code`. Anything that is not a `PhotoMapError` is a bug and
propagates with its traceback.
"""

from __future__ import annotations


class PhotoMapError(Exception):
    status: int = 400
    code: str = "error"
    message: str = "Something went wrong"
    exit_code: int = 1

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)


# --- configuration and albums -------------------------------------------------------------------------------------


class ConfigInvalid(PhotoMapError):
    status = 500
    code = "config_invalid"
    message = "The PhotoMap config file is invalid"


class AlbumInvalid(PhotoMapError):
    status = 422
    code = "album_invalid"
    message = "The album settings are invalid"


class AlbumNotFound(PhotoMapError):
    status = 404
    code = "album_not_found"

    def __init__(self, key: str) -> None:
        super().__init__(f"No album named '{key}'")


class AlbumExists(PhotoMapError):
    status = 409
    code = "album_exists"

    def __init__(self, key: str) -> None:
        super().__init__(f"An album named '{key}' already exists")


class ImageNotFound(PhotoMapError):
    status = 404
    code = "image_not_found"
    message = "No such image in this album"


class BadRequest(PhotoMapError):
    status = 400
    code = "bad_request"


class IndexBusy(PhotoMapError):
    status = 409
    code = "index_busy"
    message = "This album is already being indexed"


class NotIndexed(PhotoMapError):
    status = 409
    code = "not_indexed"
    message = "This album has not been indexed yet: press Update Index first"


# --- model ----------------------------------------------------------------------------------------------------------


class ModelUnavailable(PhotoMapError):
    status = 503
    code = "model_unavailable"


# --- API guard ------------------------------------------------------------------------------------------------------


class Unauthorized(PhotoMapError):
    status = 401
    code = "unauthorized"
    message = "Missing or wrong API token"


class Forbidden(PhotoMapError):
    status = 403
    code = "forbidden"
    message = "Request refused"
