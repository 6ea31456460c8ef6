"""Personal numbers: GB 11643 validation, masking for display and logs, keyed hashes, the key."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from hall.domain.errors import InvalidInput
from hall.domain.pii import id_number_valid, mask_id_number, mask_phone, mask_text, normalize_phone
from hall.security import logfilter
from hall.security.keys import KEY_FILE, PiiHasher, load_secret_key
from tests.conftest import AppFactory

VALID_ID = "11010519491231002X"  # the worked example of GB 11643-1999


@pytest.mark.parametrize(
    ("raw", "valid"),
    [
        (VALID_ID, True),
        ("11010519491231002x", True),
        (" 110105 19491231 002X ", True),
        ("110105194912310021", False),  # wrong check character
        ("110105194902310027", False),  # 31 February
        ("11010519491231002", False),  # 17 characters
        ("010105194912310020", False),  # no region code starts with 0
    ],
)
def test_id_numbers_are_checked_per_gb_11643(raw: str, valid: bool) -> None:
    assert id_number_valid(raw) is valid


def test_numbers_are_masked_for_display() -> None:
    assert mask_id_number(VALID_ID) == "110105********002X"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138-1234-5678") == "138****5678"
    assert mask_phone("12345") == "*****"
    assert normalize_phone("0086 138 1234 5678") == "13812345678"


def test_free_text_keeps_other_numbers() -> None:
    text = f"id={VALID_ID} tel 13812345678, +8613912345678 order 123456789012345678901 at 20261124"
    assert mask_text(text) == (
        "id=110105********002X tel 138****5678, +86139****5678"
        " order 123456789012345678901 at 20261124"
    )


def test_keyed_hashes_match_any_spelling_and_depend_on_the_key() -> None:
    hasher = PiiHasher(b"k" * 32)
    assert hasher.phone("138 1234 5678") == hasher.phone("+86-13812345678")
    assert hasher.id_number(VALID_ID.lower()) == hasher.id_number(VALID_ID)
    assert hasher.phone("13812345678") != PiiHasher(b"j" * 32).phone("13812345678")
    assert "13812345678" not in hasher.phone("13812345678")
    with pytest.raises(InvalidInput):
        hasher.id_number("110105194912310021")
    with pytest.raises(InvalidInput):
        hasher.phone("12345")


def test_the_secret_key_is_created_once_private_and_the_env_wins(tmp_path: Path) -> None:
    first = load_secret_key(tmp_path, environ={})
    assert load_secret_key(tmp_path, environ={}) == first
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert load_secret_key(tmp_path, environ={"HALL_SECRET_KEY": "ab" * 32}) == b"\xab" * 32
    with pytest.raises(ValueError, match="at least 32 bytes"):
        load_secret_key(tmp_path, environ={"HALL_SECRET_KEY": "abcd"})


async def test_the_app_masks_personal_numbers_in_every_log_record(
    make_client: AppFactory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logfilter, "_installed", False)
    original = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    try:
        await make_client()  # create_app installs the filter
        log = logging.getLogger("hall.some.module")
        with caplog.at_level(logging.INFO):
            log.info("caller %s with id %s", "13812345678", VALID_ID)
            try:
                raise ValueError(f"bad phone 13912345678 for {VALID_ID}")
            except ValueError:
                log.exception("failed")
    finally:
        logging.setLogRecordFactory(original)
    assert "caller 138****5678 with id 110105********002X" in caplog.text
    assert "139****5678" in caplog.text
    assert "13812345678" not in caplog.text
    assert "13912345678" not in caplog.text
    assert VALID_ID not in caplog.text


def test_an_audited_path_is_masked_every_time_and_only_plain_paths_are_remembered() -> None:
    from hall.storage import access_repo

    personal = f"/api/v1/halls/h/lookup/{VALID_ID}"
    plain = "/api/v1/halls/h/counters/5/call_next"
    for _ in range(3):  # the second and later answers come from the remembered paths
        assert access_repo._stored_path(personal) == mask_text(personal) != personal
        assert access_repo._stored_path(plain) == plain
    assert plain in access_repo._PLAIN_PATHS
    assert personal not in access_repo._PLAIN_PATHS, "a personal number is never kept"
