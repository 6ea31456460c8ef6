"""What a browser device can be paired as: each feature declares its kinds.

Features list them in ``Feature.pairing_kinds``.

The kernel's pairing flow (hall.web.pairing, ``hall device pair``) and the access middleware know
no kind by name: they ask the declarations installed on the app for the kind's configured
targets, the page a paired browser opens, and the device role its token acts with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from hall.config.models import Hall
from hall.domain.errors import InvalidInput

DeviceAccess = Literal["kiosk", "display"]
"""The access role a paired device's token acts with (hall.web.access.Role)."""


@dataclass(frozen=True, slots=True)
class PairingKind:
    """One kind of browser device a manager can approve a pairing code for."""

    kind: str
    """Stored on the pairing and on the device token (lower-case ASCII, at most 16 characters)."""
    label_zh: str
    """What the admin page and the CLI call it (取号机, 大厅电视/显示屏, 网页评价器)."""
    access: DeviceAccess
    """The device role its token acts with in the access table."""
    targets: Callable[[Hall], Sequence[tuple[str, str]]]
    """(device_id, name) of every configured device of this kind in the hall."""
    next_page: Callable[[str, str], str]
    """The page a browser opens once paired, from (hall_id, device_id)."""
    aliases: tuple[str, ...] = ()
    """Other names accepted for this kind (``tv`` for ``display``)."""

    def name_of(self, hall: Hall, device_id: str) -> str:
        """The configured name of ``device_id``; InvalidInput when the hall has no such device."""
        for found, name in self.targets(hall):
            if found == device_id:
                return name
        raise InvalidInput(f"大厅 {hall.id} 的配置中没有{self.label_zh} {device_id}")


PAIRING_KINDS = web.AppKey("pairing_kinds", tuple[PairingKind, ...])
"""The pairing kinds of the installed features (hall.features.install)."""


class PairingKinds:
    """Look-up of the installed kinds by name or alias."""

    def __init__(self, kinds: Iterable[PairingKind]) -> None:
        self.all: tuple[PairingKind, ...] = tuple(kinds)
        self._by_name: dict[str, PairingKind] = {}
        for k in self.all:
            for name in (k.kind, *k.aliases):
                if name in self._by_name:
                    raise ValueError(f"pairing kind {name!r} declared twice")
                self._by_name[name] = k

    def names(self) -> list[str]:
        """Every accepted name (kinds and aliases), for a CLI's choices."""
        return sorted(self._by_name)

    def find(self, name: str | None) -> PairingKind | None:
        return self._by_name.get(name or "")

    def get(self, name: str) -> PairingKind:
        """The kind called ``name`` (or an alias of it); InvalidInput when none is installed."""
        found = self.find(name)
        if found is None:
            known = "、".join(k.kind for k in self.all) or "（无）"
            raise InvalidInput(f"未知的设备类型 {name}，可选：{known}", parameter="kind")
        return found


def kinds_of(app: web.Application) -> PairingKinds:
    kinds: tuple[PairingKind, ...] = app.get(PAIRING_KINDS, ())
    return PairingKinds(kinds)
