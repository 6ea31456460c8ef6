-- Devices and the firmware bridge: the HB/1 device registry, its append-only alarms, the
-- exactly-once keys of processed device events (HB1.md §8.3) and the minimal ratings table.

CREATE TYPE device_health AS ENUM ('unknown', 'online', 'suspect', 'offline');

-- What the bridge has seen at each (bus, address); uid/class/firmware come from INFO.
CREATE TABLE devices (
    hall_id       text NOT NULL REFERENCES halls (id),
    bus           text NOT NULL,
    address       integer NOT NULL CHECK (address BETWEEN 1 AND 239),
    uid           text CHECK (uid ~ '^[0-9a-f]{16}$'),
    device_class  text NOT NULL,
    firmware      text,
    boot_id       integer,
    counter_number integer,
    kiosk         text,
    screen        text,
    state         device_health NOT NULL DEFAULT 'unknown',
    state_since   timestamptz NOT NULL DEFAULT now(),
    last_seen     timestamptz,
    PRIMARY KEY (bus, address)
);
CREATE INDEX devices_uid ON devices (uid) WHERE uid IS NOT NULL;
CREATE INDEX devices_hall ON devices (hall_id);

CREATE TABLE device_alarms (
    id        bigserial PRIMARY KEY,
    hall_id   text NOT NULL REFERENCES halls (id),
    bus       text NOT NULL,
    address   integer NOT NULL,
    uid       text,
    kind      text NOT NULL CHECK (kind IN ('offline', 'online', 'uid_changed', 'duplicate_uid',
                                            'rebooted', 'event_overflow', 'fault')),
    detail    text NOT NULL DEFAULT '',
    at        timestamptz NOT NULL
);
CREATE INDEX device_alarms_hall ON device_alarms (hall_id, id DESC);

-- Exactly-once: one row per device event, inserted in the transaction of its effect.
CREATE TABLE device_events_seen (
    device_uid    text NOT NULL,
    boot_id       integer NOT NULL CHECK (boot_id BETWEEN 1 AND 65535),
    evt_seq       integer NOT NULL CHECK (evt_seq BETWEEN 1 AND 65535),
    hall_id       text NOT NULL REFERENCES halls (id),
    evt_type      integer NOT NULL,
    outcome       text NOT NULL,
    processed_at  timestamptz NOT NULL,
    UNIQUE (device_uid, boot_id, evt_seq)
);

-- One rating per service visit (ticket): a level 1-5, or not rated with a reason.
CREATE TABLE ratings (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL REFERENCES halls (id),
    ticket_id       bigint NOT NULL UNIQUE REFERENCES tickets (id),
    counter_number  integer NOT NULL,
    clerk           text,
    level           smallint CHECK (level BETWEEN 1 AND 5),
    not_rated_reason text CHECK (not_rated_reason IN ('timeout', 'skipped', 'pad_offline',
                                                      'pad_reboot')),
    reasons         integer NOT NULL DEFAULT 0,
    dims            smallint[],
    channel         text NOT NULL DEFAULT 'pad',
    device_uid      text,
    rated_at        timestamptz NOT NULL,
    CHECK ((level IS NULL) <> (not_rated_reason IS NULL))
);

CREATE TRIGGER device_alarms_append_only BEFORE UPDATE OR DELETE ON device_alarms
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER ratings_append_only BEFORE UPDATE OR DELETE ON ratings
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
