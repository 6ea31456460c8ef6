-- kiosk: appointments (预约) imported from the booking platform, checked in at a kiosk by
-- booking code or phone. The phone is kept only as a keyed hash and a masked form; the name
-- only masked. Check-in writes the ticket and marks the booking in one transaction.

CREATE TABLE kiosk_appointments (
    id             bigserial PRIMARY KEY,
    hall_id        text NOT NULL REFERENCES halls (id),
    code           text NOT NULL CHECK (code ~ '^[0-9A-Z]{4,16}$'),
    service_code   text NOT NULL,
    slot_start     timestamptz NOT NULL,
    slot_end       timestamptz NOT NULL CHECK (slot_end > slot_start),
    phone_hash     text CHECK (phone_hash ~ '^[0-9a-f]{64}$'),
    phone_masked   text,
    name_masked    text,
    created_at     timestamptz NOT NULL,
    created_by     text NOT NULL,
    ticket_id      bigint REFERENCES tickets (id) ON DELETE SET NULL,
    checked_in_at  timestamptz,
    CHECK (ticket_id IS NULL OR checked_in_at IS NOT NULL)
);
CREATE UNIQUE INDEX kiosk_appointments_code ON kiosk_appointments (hall_id, code);
CREATE INDEX kiosk_appointments_phone ON kiosk_appointments (hall_id, phone_hash, slot_start)
    WHERE phone_hash IS NOT NULL;
