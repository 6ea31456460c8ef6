-- Device pairing: a browser at /pair shows a one-time code; an admin approves it for a kiosk
-- or display; the browser then claims its device token as the HttpOnly device cookie.
-- Neither the browser's pairing secret nor the device token is stored, only hashes.

CREATE TABLE device_pairings (
    id               bigserial PRIMARY KEY,
    code             text NOT NULL CHECK (code ~ '^[0-9]{6}$'),
    secret_hash      bytea NOT NULL UNIQUE,
    created_at       timestamptz NOT NULL,
    expires_at       timestamptz NOT NULL,
    user_agent       text,
    ip               text,
    approved_at      timestamptz,
    approved_by      text,
    kind             text CHECK (kind IN ('kiosk', 'display')),
    hall_id          text REFERENCES halls (id),
    device_id        text,
    claimed_at       timestamptz,
    device_token_id  bigint REFERENCES device_tokens (id),
    CHECK ((approved_at IS NULL) = (kind IS NULL)),
    CHECK ((claimed_at IS NULL) = (device_token_id IS NULL))
);
-- A code names one pairing while it can still be approved or claimed.
CREATE UNIQUE INDEX device_pairings_live_code ON device_pairings (code) WHERE claimed_at IS NULL;
