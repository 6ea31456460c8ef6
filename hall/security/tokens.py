"""Random bearer secrets and their stored form (SHA-256; the tokens carry 256 random bits)."""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["DEVICE_PREFIX", "SESSION_PREFIX", "new_token", "token_hash"]

SESSION_PREFIX = "hs1_"
DEVICE_PREFIX = "hd1_"


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()
