"""Staff password hashing with ``hashlib.scrypt``; the parameters are stored beside the hash.

Format: ``scrypt$n=<N>,r=<r>,p=<p>$<salt b64>$<hash b64>``. Raising ``DEFAULT_PARAMS`` later
makes ``needs_rehash`` true for older hashes, and the login upgrades them on the next success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = [
    "DEFAULT_PARAMS",
    "ScryptParams",
    "hash_password",
    "needs_rehash",
    "password_problem",
    "verify_password",
]

_SCHEME = "scrypt"
_SALT_BYTES = 16
_KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 8


def password_problem(password: str, job_no: str) -> str | None:
    """Why a new password is refused (zh-CN), or None: at least 8 characters of at least two
    kinds (letters, digits, other), and not containing the job number."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符"
    kinds = (
        any(c.isalpha() for c in password),
        any(c.isdigit() for c in password),
        any(not c.isalnum() for c in password),
    )
    if sum(kinds) < 2:
        return "密码需包含字母、数字、符号中的至少两类"
    if job_no and job_no.lower() in password.lower():
        return "密码不能包含工号"
    return None


@dataclass(frozen=True, slots=True)
class ScryptParams:
    n: int = 2**15
    r: int = 8
    p: int = 1

    def maxmem(self) -> int:
        # scrypt needs 128 * n * r bytes; leave headroom so OpenSSL does not refuse.
        return 128 * self.n * self.r * 2 + 1024 * 1024

    def encode(self) -> str:
        return f"n={self.n},r={self.r},p={self.p}"

    @classmethod
    def decode(cls, text: str) -> ScryptParams:
        fields = dict(part.split("=", 1) for part in text.split(","))
        return cls(n=int(fields["n"]), r=int(fields["r"]), p=int(fields["p"]))


# About 50-100 ms and 32 MiB per hash on an old office PC: slow for guessing, fine for logins.
DEFAULT_PARAMS = ScryptParams()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, params: ScryptParams = DEFAULT_PARAMS) -> str:
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=params.maxmem(),
        dklen=_KEY_BYTES,
    )
    return f"{_SCHEME}${params.encode()}${_b64(salt)}${_b64(digest)}"


def _parse(stored: str) -> tuple[ScryptParams, bytes, bytes] | None:
    try:
        scheme, params, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return None
        return ScryptParams.decode(params), base64.b64decode(salt), base64.b64decode(digest)
    except (ValueError, KeyError):
        return None


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored hash; False for a malformed hash."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    params, salt, expected = parsed
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=params.maxmem(),
        dklen=len(expected),
    )
    return hmac.compare_digest(digest, expected)


def needs_rehash(stored: str, params: ScryptParams = DEFAULT_PARAMS) -> bool:
    """True when the stored hash used weaker parameters than ``params``."""
    parsed = _parse(stored)
    if parsed is None:
        return True
    old = parsed[0]
    return (old.n, old.r, old.p) < (params.n, params.r, params.p)
