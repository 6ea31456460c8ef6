"""Bodies of the login, session, device-token and audit endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class LoginBody(_Body):
    job_no: Annotated[str, Field(min_length=1, max_length=32)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class PasswordChangeBody(_Body):
    current_password: Annotated[str, Field(min_length=1, max_length=200)]
    new_password: Annotated[str, Field(min_length=1, max_length=200)]


class DeviceLoginBody(_Body):
    token: Annotated[str, Field(min_length=1, max_length=200)]


class LoginOut(_Out):
    job_no: str
    name: str
    roles: list[str]
    halls: list[str]
    counters: list[int]
    token: str
    """Bearer token for API clients (Authorization: Bearer …); the page session is the cookie."""
    token_type: Literal["Bearer"] = "Bearer"
    csrf_token: str
    """Send as X-CSRF-Token with every state-changing request authenticated by the cookie."""
    session_id: int
    """The bearer session; the cookie session of the same login has its own id."""
    expires_at: datetime
    idle_timeout_s: int


class MeOut(_Out):
    kind: str
    actor: str
    name: str
    roles: list[str]
    halls: list[str]
    counters: list[int]
    session_id: int | None = None
    session_kind: str | None = None
    csrf_token: str | None = None
    """Only for cookie sessions, so a reloaded page can find its CSRF token again."""
    device_id: str | None = None
    device_kind: str | None = None
    """Devices: the token's kind (a feature's pairing kind such as ``pad``)."""


class SessionOut(_Out):
    id: int
    login_id: str
    job_no: str
    kind: str
    created_at: datetime
    expires_at: datetime
    last_seen_at: datetime
    user_agent: str | None
    ip: str | None


class RevokedOut(_Out):
    revoked: list[int]


class DeviceTokenBody(_Body):
    kind: Literal["kiosk", "display", "bridge"]
    hall: Annotated[str, Field(min_length=1, max_length=32)]
    device_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    name: Annotated[str, Field(min_length=1, max_length=60)] | None = None


class DeviceTokenOut(_Out):
    id: int
    kind: str
    hall: str
    device_id: str
    name: str
    created_at: datetime
    token: str | None = None
    """Shown once, at creation; only its hash is stored."""
    revoked_at: datetime | None = None


class AuditOut(_Out):
    id: int
    at: datetime
    actor: str
    actor_kind: str
    session_id: int | None
    route: str
    method: str
    path: str
    params: dict[str, Any]
    remote: str | None
    user_agent: str | None
    status: int


class AuditPageOut(_Out):
    items: list[AuditOut]
    next_before: int | None
    """Pass as ?before= for the next (older) page; null on the last page."""
