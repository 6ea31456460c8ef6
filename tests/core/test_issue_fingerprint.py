"""The fingerprint stored with an idempotency key is the same for the same request across
versions: a kiosk retrying after a server upgrade gets its ticket back, not a refusal."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hall.config.models import Purpose
from hall.services.queue import IssueTicket

SHANGHAI = timezone(timedelta(hours=8))


def test_fingerprints_are_the_ones_earlier_versions_stored() -> None:
    # Values computed by the version that stored fingerprints before this one (94da971).
    plain = IssueTicket(hall_id="test", service_code="BDC", idempotency_key="k1")
    full = IssueTicket(
        hall_id="test",
        service_code="TAX",
        purpose=Purpose.CONSULT,
        priority_class="老年人",
        appointment_start=datetime(2026, 11, 24, 10, 0, tzinfo=SHANGHAI),
        appointment_end=datetime(2026, 11, 24, 10, 30, tzinfo=SHANGHAI),
        kiosk="k2",
        idempotency_key="k2",
    )
    assert plain.fingerprint() == (
        "80a1757466131d35bf0acb6c9535bb9e8804f71e1bbaa39ef179b4b87078756d"
    )
    assert full.fingerprint() == (
        "bc80711397fe39d6c20df346a6e4f8e7cc0c9f0b8735e11892201c5b8c2a8bbd"
    )


def test_the_key_itself_is_not_part_of_the_fingerprint() -> None:
    one = IssueTicket(hall_id="test", service_code="BDC", idempotency_key="a")
    other = IssueTicket(hall_id="test", service_code="BDC", idempotency_key="b")
    assert one.fingerprint() == other.fingerprint()
    assert one.fingerprint() != IssueTicket(hall_id="test", service_code="TAX").fingerprint()
