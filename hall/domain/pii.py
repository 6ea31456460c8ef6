"""Personal data rules: ID-card (GB 11643) and mobile number validation and masking.

Pure functions, standard library only. Masked forms follow the hall privacy rule: an ID number
keeps its region code and last four characters (``110101********1234``), a mobile number its
first three and last four digits (``138****5678``).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

__all__ = [
    "id_number_valid",
    "mask_id_number",
    "mask_phone",
    "mask_text",
    "normalize_id_number",
    "normalize_phone",
]

# GB 11643-1999: weights of the first 17 digits and the check character for (sum mod 11).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"

# ASCII digits only: NFKC has already turned full-width ones into ASCII; other scripts' digits
# (which ``\d`` would match and ``int`` would read) are not a number's spelling here.
_ID_SHAPE = re.compile(r"^[1-9]\d{16}[\dX]$", re.ASCII)
_MOBILE_SHAPE = re.compile(r"^1[3-9]\d{9}$", re.ASCII)
_PHONE_PREFIX = re.compile(r"^(?:\+|00)?86")

# For free text (log lines): any 18-character ID-shaped run and any mainland mobile number,
# also written as +86 138 1234 5678 or 138-1234-5678, not glued to other digits.
_ID_IN_TEXT = re.compile(r"(?<![0-9])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")
_MOBILE_IN_TEXT = re.compile(
    r"(?<![0-9])((?:\+|00)?86[- ]?)?(1[3-9]\d)[- ]?\d{4}[- ]?(\d{4})(?![0-9])"
)


def normalize_id_number(raw: str) -> str:
    """Full-width characters (as a Chinese IME types them) to ASCII, spaces stripped, the check
    character upper-cased; no validation."""
    return "".join(unicodedata.normalize("NFKC", raw).split()).upper()


def id_number_valid(raw: str) -> bool:
    """True for an 18-character resident ID with a real birth date and a correct check char."""
    value = normalize_id_number(raw)
    if not _ID_SHAPE.match(value):
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    if born.year < 1900:
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _WEIGHTS, strict=True))
    return _CHECK[total % 11] == value[17]


def normalize_phone(raw: str) -> str | None:
    """The 11-digit mainland mobile number in ``raw`` (spaces, dashes, +86 allowed), or None."""
    digits = re.sub(r"[\s\-()]", "", unicodedata.normalize("NFKC", raw))
    digits = _PHONE_PREFIX.sub("", digits) if len(digits) > 11 else digits
    return digits if _MOBILE_SHAPE.match(digits) else None


def mask_id_number(raw: str) -> str:
    """``110101********1234``; anything not ID-shaped is masked entirely."""
    value = normalize_id_number(raw)
    if len(value) != 18:
        return "*" * len(value)
    return value[:6] + "*" * 8 + value[14:]


def mask_phone(raw: str) -> str:
    """``138****5678``; anything that is not a mobile number is masked entirely."""
    value = normalize_phone(raw)
    if value is None:
        return "*" * len(raw.strip())
    return value[:3] + "****" + value[7:]


def mask_text(text: str) -> str:
    """Mask every ID number and mobile number inside free text (for logs)."""
    if not any(c.isdigit() for c in text):
        return text
    text = _ID_IN_TEXT.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), text)
    return _MOBILE_IN_TEXT.sub(
        lambda m: (m.group(1) or "") + m.group(2) + "****" + m.group(3), text
    )
