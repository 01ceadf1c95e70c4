"""The InvokeAI password, kept apart from config.json in `secrets.json` (mode 0600, written atomically).

The password is write-only everywhere else: it is held as a pydantic `SecretStr` (whose repr and str are masked), no
route returns it, and nothing logs it. Only `get_secret_value()` at the moment of logging in to InvokeAI reveals it.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from photomapd import config

log = logging.getLogger(__name__)

SECRETS_MODE = 0o600  # readable by the user only, from the moment the temp file exists


class Secrets(BaseModel):
    model_config = ConfigDict(extra="ignore")

    invokeai_password: SecretStr | None = None


def load_secrets() -> Secrets:
    """Read secrets.json; a missing or unreadable file means no secrets (the user types the password again)."""
    path = config.secrets_path()
    try:
        return Secrets.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return Secrets()
    except (OSError, ValidationError):
        # The file's content is not echoed: it may be a password.
        log.warning("%s is unreadable or invalid; ignoring it", path)
        return Secrets()


def save_secrets(secrets: Secrets) -> None:
    password = secrets.invokeai_password
    value = {"invokeai_password": password.get_secret_value() if password else None}
    config.write_json_atomic(config.secrets_path(), value, mode=SECRETS_MODE)


def load_password() -> SecretStr | None:
    return load_secrets().invokeai_password


def save_password(password: SecretStr | None) -> None:
    """Store the InvokeAI password; None or an empty one clears it."""
    secrets = load_secrets()
    secrets.invokeai_password = password if password and password.get_secret_value() else None
    save_secrets(secrets)
