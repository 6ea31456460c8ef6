"""The deployment's secret key and keyed hashing of personal data (HMAC-SHA256).

The key comes from ``$HALL_SECRET_KEY`` (hex or base64, at least 32 bytes) or from
``<data dir>/secret.key``, created with mode 0600 on first use. Keyed hashes let the hall count
"one person, N tickets a day" without storing the ID or phone number itself; losing the key only
makes old hashes unmatchable.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from hall.domain.errors import InvalidInput
from hall.domain.pii import id_number_valid, normalize_id_number, normalize_phone

__all__ = ["ENV_VAR", "KEY_FILE", "PiiHasher", "load_secret_key"]

ENV_VAR = "HALL_SECRET_KEY"
KEY_FILE = "secret.key"
_KEY_BYTES = 32


def _decode(text: str) -> bytes:
    text = text.strip()
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{ENV_VAR} must be hex or base64") from None


def load_secret_key(data_dir: Path, environ: dict[str, str] | None = None) -> bytes:
    """The key from the environment, else from the data directory (created when missing)."""
    env = os.environ if environ is None else environ
    if raw := env.get(ENV_VAR):
        key = _decode(raw)
    else:
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(_KEY_BYTES) + "\n")
        key = _decode(path.read_text(encoding="ascii"))
    if len(key) < _KEY_BYTES:
        raise ValueError(f"the secret key must have at least {_KEY_BYTES} bytes")
    return key


class PiiHasher:
    """Keyed, purpose-separated hashes of ID and phone numbers; the inputs are never kept."""

    def __init__(self, key: bytes) -> None:
        if len(key) < _KEY_BYTES:
            raise ValueError(f"the secret key must have at least {_KEY_BYTES} bytes")
        self._key = key

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def id_number(self, raw: str) -> str:
        """Hash of a valid resident ID number; raises InvalidInput otherwise."""
        if not id_number_valid(raw):
            raise InvalidInput("身份证号码不正确")
        return self._mac("id", normalize_id_number(raw))

    def phone(self, raw: str) -> str:
        """Hash of a mainland mobile number in any spelling; raises InvalidInput otherwise."""
        value = normalize_phone(raw)
        if value is None:
            raise InvalidInput("手机号码不正确")
        return self._mac("phone", value)
