"""Personal numbers at their edges: every digit of the GB 11643 check, dates, masking shapes.

The common cases are in tests/access/test_pii.py; these pin what a wrong weight, boundary or
index would change.
"""

from __future__ import annotations

import pytest

from hall.domain.pii import (
    id_number_valid,
    mask_id_number,
    mask_phone,
    mask_text,
    normalize_id_number,
    normalize_phone,
)

# No digit is 0, so a change to any one of the 17 weights changes the check character.
NO_ZERO_ID = "342124199912315679"


def test_every_digit_counts_towards_the_check_character() -> None:
    assert id_number_valid(NO_ZERO_ID)
    for i in range(17):
        # another digit at one place: the check character no longer matches
        changed = NO_ZERO_ID[:i] + str(int(NO_ZERO_ID[i]) % 9 + 1) + NO_ZERO_ID[i + 1 :]
        assert not id_number_valid(changed), changed
    assert not id_number_valid(NO_ZERO_ID[:17] + "X")


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        ("110105190001011231", True),  # born 1 January 1900: the first date accepted
        ("110105189912311237", False),  # 31 December 1899 (check character right)
        ("445381199111111232", True),
        # Impossible dates, each with the right check character for its 17 digits:
        ("445381199111311234", False),  # 31 November
        ("445381199102291235", False),  # 29 February 1991
        ("445381199202291232", True),  # 29 February 1992 (a leap year)
        ("4453811991111112321", False),  # 19 characters
        ("44538119911111123", False),
        ("44538119911111123A", False),
        ("", False),
    ],
)
def test_birth_dates_and_shape(raw: str, valid: bool) -> None:
    assert id_number_valid(raw) is valid


def test_normalize_id_number() -> None:
    assert normalize_id_number(" 11010519491231002x\t") == "11010519491231002X"
    assert normalize_id_number("１１０１０５１９４９１２３１００２ｘ") == "11010519491231002X"


def test_full_width_id_numbers_are_the_same_number() -> None:
    # A full-width spelling once passed as a different string (another keyed hash).
    assert id_number_valid("３４２１２４１９９９１２３１５６７９")
    arabic = NO_ZERO_ID[:5] + chr(0x660 + int(NO_ZERO_ID[5])) + NO_ZERO_ID[6:]  # ٤ for 4
    assert not id_number_valid(arabic)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("13812345678", "13812345678"),
        ("(138) 1234-5678", "13812345678"),
        ("+8619912345678", "19912345678"),
        ("86 13812345678", "13812345678"),
        ("12812345678", None),  # no mobile range starts with 12
        ("1381234567", None),
        ("138123456789", None),
        ("+86 1381234567", None),
        # Typed with a Chinese IME in full-width mode: the same number.
        ("１３８１２３４５６７８", "13812345678"),
        ("＋８６ １３８－１２３４－５６７８", "13812345678"),
        ("13٨12345678", None),  # an Arabic-Indic digit is not a mainland number's spelling
    ],
)
def test_normalize_phone(raw: str, normalized: str | None) -> None:
    assert normalize_phone(raw) == normalized


def test_masks_keep_exactly_the_documented_characters() -> None:
    assert mask_id_number(NO_ZERO_ID) == "342124********5679"
    assert mask_id_number(" 3421 2419 9912 3156 7x ") == "342124********567X"
    assert mask_id_number("12345") == "*****"
    assert mask_id_number("3421241999123156791") == "*" * 19
    assert mask_phone(" 19912345678 ") == "199****5678"
    assert mask_phone("  12345 ") == "*****"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("no digits here", "no digits here"),
        ("证件 342124199912315679，电话 19912345678", "证件 342124********5679，电话 199****5678"),
        ("x 34212419991231567x y", "x 342124********567x y"),
        ("tel 0086-139-1234-5678.", "tel 0086-139****5678."),
        ("tel 86 139 1234 5678", "tel 86 139****5678"),
        (
            "order 119912345678 and 3421241999123156790",
            "order 119912345678 and 3421241999123156790",
        ),
        ("ID 342124199912315679A", "ID 342124199912315679A"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked
