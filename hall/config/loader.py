"""Load and validate the TOML hall configuration.

``parse_config`` and ``load_config`` either return a valid ``HallConfig`` or raise one
``ConfigError`` that lists *every* problem found, each with a readable key path such as
``halls[0].counters[12].services[1].code`` and a message naming the offending value.
Messages are English: they are for operators editing the file.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from hall.config import models
from hall.config.models import REFERENCE_ERROR, HallConfig

__all__ = ["ConfigError", "ConfigIssue", "format_path", "load_config", "parse_config"]


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration file."""

    path: str
    """Key path (``halls[0].services[2].prefix``); empty for the whole file."""
    message: str
    line: int | None = None
    """1-based line, when known (TOML syntax errors)."""
    column: int | None = None

    def __str__(self) -> str:
        where = self.path or "(file)"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration is unusable; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[ConfigIssue], source: str | None = None) -> None:
        self.issues: list[ConfigIssue] = list(issues)
        self.source = source
        head = f"{source}: " if source else ""
        count = len(self.issues)
        lines = [f"{head}{count} configuration problem{'s' if count != 1 else ''}"]
        lines.extend(f"  {issue}" for issue in self.issues)
        super().__init__("\n".join(lines))


def load_config(path: str | Path) -> HallConfig:
    """Read a TOML file (UTF-8, a BOM is accepted) and validate it."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [ConfigIssue("", f"file is not valid UTF-8 (byte {exc.start}): {exc.reason}")], source
        ) from exc
    except OSError as exc:
        raise ConfigError(
            [ConfigIssue("", f"cannot read file: {exc.strerror or exc}")], source
        ) from exc
    return parse_config(text, source=source)


def parse_config(text: str, *, source: str | None = None) -> HallConfig:
    """Parse TOML text and validate it as a ``HallConfig``."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_issue(exc)], source) from exc
    try:
        return HallConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(issues_from_validation(exc), source) from exc


_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_END = re.compile(r"\s*\(at end of document\)\s*$")


def _syntax_issue(exc: tomllib.TOMLDecodeError) -> ConfigIssue:
    message = str(exc)
    match = _POSITION.search(message)
    if match is not None:
        line, column = int(match.group(1)), int(match.group(2))
        text = message[: match.start()]
        return ConfigIssue(
            f"line {line}, column {column}", f"TOML syntax error: {text}", line, column
        )
    end = _END.search(message)
    text = message[: end.start()] if end else message
    return ConfigIssue("end of file" if end else "", f"TOML syntax error: {text}")


def format_path(loc: Iterable[str | int]) -> str:
    """``("halls", 0, "counters", 12)`` → ``halls[0].counters[12]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def issues_from_validation(exc: ValidationError) -> list[ConfigIssue]:
    """Turn pydantic's errors into operator-readable issues, in file order."""
    issues: list[ConfigIssue] = []
    seen: set[tuple[str, str]] = set()
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        path = format_path(loc)
        message = _message(error, loc)
        if (path, message) not in seen:
            seen.add((path, message))
            issues.append(ConfigIssue(path, message))
    return issues


def _message(error: Mapping[str, Any], loc: tuple[str | int, ...]) -> str:
    kind: str = error["type"]
    value = error.get("input")
    if kind == REFERENCE_ERROR:
        return str(error["msg"])
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        hint = difflib.get_close_matches(key, _known_keys(), n=1, cutoff=0.75)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown key {key!r}{suggestion}"
    if kind == "missing":
        return "missing required key"
    if kind == "model_type" or kind == "dict_type":
        return f"expected a table, got {_show(value)}"
    if kind == "list_type":
        return f"expected an array, got {_show(value)}"
    msg = str(error["msg"])
    if kind in ("too_short", "too_long"):
        return f"{msg[:1].lower()}{msg[1:]}".replace(" after validation", "")
    if kind == "value_error":
        # Our own ValueErrors already name the value.
        return msg.removeprefix("Value error, ")
    return f"{msg[:1].lower()}{msg[1:]}; got {_show(value)}"


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_KEYS: list[str] = []


def _known_keys() -> list[str]:
    if not _KEYS:
        keys: set[str] = set()
        for obj in vars(models).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel):
                for name, field in obj.model_fields.items():
                    keys.add(field.alias or name)
        _KEYS.extend(sorted(keys))
    return _KEYS
