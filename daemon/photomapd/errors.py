"""Typed errors: every message a user can see lives here, once.

Domain code raises these; the API's error middleware renders `{"error": {"code", "message"}}` with `status`, and
the `cli` package prints `message` on one line and exits with `exit_code`. Anything that is not a `PhotoMapError` is
a bug and propagates with its traceback.
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


class FolderUnavailable(PhotoMapError):
    status = 409
    code = "folder_unavailable"

    def __init__(self, folder: str) -> None:
        super().__init__(
            f"Folder {folder} is not available (unplugged or unmounted?); the index was left unchanged. "
            "Connect it and try again."
        )


class NotIndexed(PhotoMapError):
    status = 409
    code = "not_indexed"
    message = "This album has not been indexed yet: press Update Index first"
    cli_message = "This album has not been indexed yet: run `{command}` first"  # the CLI has no button to press

    @classmethod
    def in_cli(cls, command: str) -> NotIndexed:
        return cls(cls.cli_message.format(command=command))


# --- model ----------------------------------------------------------------------------------------------------------


class ModelUnavailable(PhotoMapError):
    status = 503
    code = "model_unavailable"


class PrecisionMismatch(PhotoMapError):
    status = 409
    code = "precision_mismatch"

    def __init__(self, table: str, model: str) -> None:
        super().__init__(
            f"This album's vectors were made at {table} and the model now runs at {model} (model_precision): "
            "rebuild the index to switch, so one album never mixes the two"
        )


class ModelCrashed(ModelUnavailable):
    message = "The model process stopped unexpectedly (out of memory, or killed); try again"


class RayMissing(PhotoMapError):
    """`--engine ray` without the optional `[scale]` group (Ray Data, lance-ray) installed."""

    status = 501
    code = "ray_missing"
    message = "Indexing with --engine ray needs Ray: install it with pip install -e '.[scale]' (in the PhotoMap repo)"


# --- API guard ------------------------------------------------------------------------------------------------------


class Unauthorized(PhotoMapError):
    status = 401
    code = "unauthorized"
    message = "Missing or wrong API token"


class Forbidden(PhotoMapError):
    status = 403
    code = "forbidden"
    message = "Request refused"


# --- InvokeAI (client, settings, actions) ---------------------------------------------------------------------------
# Upstream failures answer 502, never 401/403: those codes mean "wrong daemon token / origin" to the extension.


class InvokeAIUrlScheme(PhotoMapError):
    status = 422
    code = "invokeai_url_scheme"
    message = "InvokeAI URL must use http:// or https://"


class InvokeAIUrlHost(PhotoMapError):
    status = 422
    code = "invokeai_url_host"
    message = "InvokeAI URL must include a host"


class BackendUnreachable(PhotoMapError):
    status = 502
    code = "backend_unreachable"
    message = "Could not reach backend"


class CertificateUntrusted(BackendUnreachable):
    code = "certificate_untrusted"
    message = "Could not reach backend: its HTTPS certificate is not trusted (self-signed?)"


class NotInvokeAI(PhotoMapError):
    status = 502
    code = "not_invokeai"
    message = "Server is reachable but doesn't appear to be an InvokeAI backend"


class InvokeAINotConfigured(PhotoMapError):
    status = 409
    code = "invokeai_not_configured"
    message = "Set the InvokeAI Backend URL in Settings first"


class AuthRejected(PhotoMapError):
    status = 502
    code = "invokeai_auth_rejected"
    message = "InvokeAI rejected the username or password"


class AuthRequired(PhotoMapError):
    status = 502
    code = "invokeai_auth_required"
    message = "This InvokeAI server is in multi-user mode: enter your InvokeAI username and password in Settings"


class RecallUnsupported(PhotoMapError):
    status = 409
    code = "recall_unsupported"
    message = "Recall needs InvokeAI 6.12 or newer"

    def __init__(self, version: str | None = None, action: str = "Recall") -> None:
        needs = f"{action} needs InvokeAI 6.12 or newer"  # Remix is a Recall without the seed: same version
        super().__init__(f"{needs} (this server runs {version})" if version else needs)


# What a server too old for an action says about it, for the settings probe to grey the buttons with (versions in
# invokeai/client.py: RECALL_SINCE, APPEND_SINCE). Recall's own wording is RecallUnsupported.message.
REMIX_NEEDS_VERSION = "Remix needs InvokeAI 6.12 or newer"
APPEND_NEEDS_VERSION = "Append needs InvokeAI 6.14 or newer"


class NotRecallable(PhotoMapError):
    status = 409
    code = "not_recallable"
    message = "This image has no InvokeAI generation metadata that PhotoMap recognises, so it can't be recalled"


class BoardNotFound(PhotoMapError):
    status = 409
    code = "invokeai_board_not_found"
    message = "The chosen InvokeAI board no longer exists: choose another one in Settings"


class InvokeAIRefused(PhotoMapError):
    """InvokeAI answered, but said no; `detail` is its own explanation."""

    status = 502
    code = "invokeai_refused"
    message = "InvokeAI refused the request"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(f"{self.message}: {detail}" if detail else None)


class RefImageInvalid(PhotoMapError):
    """A context-menu image that can't be used: wrong scheme, too big, not an image, download failed."""

    status = 422
    code = "ref_image_invalid"
    message = "That is not an image PhotoMap can send to InvokeAI"


class RefImageTooBig(RefImageInvalid):
    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The image is larger than {limit_bytes // 1024**2} MB")


REF_URL_SCHEME = "Only http:// and https:// image addresses can be sent to InvokeAI"
REF_NOT_IMAGE = "That address did not return an image (PNG, JPEG, WebP, GIF, BMP or TIFF)"
REF_DOWNLOAD_FAILED = "Could not download the image"
REF_TOO_MANY_REDIRECTS = "Could not download the image: too many redirects"


# --- daemon lifecycle and native messaging --------------------------------------------------------------------------


class AlreadyRunning(PhotoMapError):
    """A second `serve` found the first one; not a failure, so the exit code is 0."""

    status = 409
    code = "already_running"
    exit_code = 0

    def __init__(self, pid: int | None, port: int | None) -> None:
        where = f"http://127.0.0.1:{port}" if port else "a port it has not published yet (still starting)"
        super().__init__(f"Already running at {where} (pid {pid or 'unknown'})")


class DaemonStartFailed(PhotoMapError):
    status = 503
    code = "daemon_start_failed"

    def __init__(self, reason: str, log_file: str | None) -> None:
        see = f". See {log_file}" if log_file else ""  # None: the reason says it all (e.g. a config.json to fix)
        super().__init__(f"The PhotoMap daemon did not start: {reason}{see}")


class DaemonStopFailed(PhotoMapError):
    status = 500
    code = "daemon_stop_failed"

    def __init__(self, pid: int, timeout_s: float) -> None:
        super().__init__(f"photomapd (pid {pid}) did not stop within {timeout_s:g} s; `kill -9 {pid}` forces it")


class NativeFrameInvalid(PhotoMapError):
    """The browser's byte stream broke the framing (bad length, cut short); it can't be resynchronised."""

    code = "bad_frame"
    message = "Malformed native message frame"


class NativeMessageInvalid(PhotoMapError):
    code = "bad_message"
    message = "A native message must be a UTF-8 JSON object with a string 'type'"


class NativeMessageUnknown(PhotoMapError):
    code = "unknown_type"

    def __init__(self, kind: str) -> None:
        super().__init__(f"Unknown native message type '{kind}': expected hello, status or start")


class InstallFailed(PhotoMapError):
    code = "install_failed"
    message = "photomapd install failed"


# --- search, thumbnails and image files -----------------------------------------------------------------------------


class ImageUnreadable(PhotoMapError):
    status = 422
    code = "image_unreadable"
    message = "The image could not be decoded"


class ModelMismatch(PhotoMapError):
    status = 409
    code = "model_mismatch"
    message = "This album was indexed with another model: press Update Index to re-embed it"
    cli_message = "This album was indexed with another model: run `{command}` to re-embed it"

    @classmethod
    def in_cli(cls, command: str) -> ModelMismatch:
        return cls(cls.cli_message.format(command=command))


class FileMissing(PhotoMapError):
    status = 404
    code = "file_missing"
    message = "The image file is no longer on disk: press Update Index"


class FileOutsideAlbum(PhotoMapError):
    status = 404  # not 403: the extension reads 401/403 as "wrong daemon token or origin"
    code = "file_outside_album"
    message = "The image file is no longer inside this album's folders"


# --- ref images and InvokeAI logins (DESIGN §13) --------------------------------------------------------------------


class RefAddressRefused(RefImageInvalid):
    message = (
        "PhotoMap only downloads images from public internet addresses (and from your InvokeAI server): "
        "that address is on this computer or a private network"
    )


class RefDownloadTooSlow(RefImageInvalid):
    def __init__(self, deadline_s: float) -> None:
        super().__init__(f"Could not download the image: the server took more than {deadline_s:g} s")


class RefBytesNotImage(RefImageInvalid):
    """Bytes the extension sent (or an album file) that Pillow can't open: no address is involved."""

    message = "The data sent is not an image PhotoMap can read (PNG, JPEG, WebP, GIF, BMP or TIFF)"


class AuthUsernameNotEmail(AuthRejected):
    """A multi-user server validates the login name as an email address before it checks the password (422)."""

    message = "InvokeAI rejected the username: it must be the email address you log in to InvokeAI with"


# --- board albums (DESIGN §11) --------------------------------------------------------------------------------------


class BoardNotVisible(PhotoMapError):
    """A board album names a board the server doesn't have, or one this user may not see (another user's)."""

    status = 409
    code = "invokeai_board_not_visible"

    def __init__(self, board_id: str) -> None:
        super().__init__(f"InvokeAI has no board '{board_id}' that this user can see")


class BoardImageGone(PhotoMapError):
    status = 404
    code = "invokeai_image_gone"
    message = (
        "This image is no longer on the InvokeAI server (deleted, or moved out of reach): it leaves the album at the "
        "next sync"
    )


class BoardImageNotAllowed(PhotoMapError):
    status = 404  # not 403: the extension reads 401/403 as "wrong daemon token or origin"
    code = "invokeai_image_not_allowed"
    message = "InvokeAI no longer lets this user see that image (it is in another user's private board)"


class SelectionInvalid(PhotoMapError):
    status = 422
    code = "selection_invalid"
    message = "Select at least one image"


class AppendUnsupported(PhotoMapError):
    status = 409
    code = "append_unsupported"

    def __init__(self, version: str) -> None:
        super().__init__(f"Append needs InvokeAI 6.14 or newer (this server is {version})")
