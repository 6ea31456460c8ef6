-- Counters slice: hardware sign-in credentials, the sign-in log, supervision alarms.

-- A clerk's PIN (typed as job_no*pin on a caller), IC card serial and badge code: each stored
-- only as a salted scrypt hash (hall.security.passwords); a card or badge is checked against
-- the hashes of the staff bound to the window it is presented at.
CREATE TABLE staff_device_credentials (
    job_no       text NOT NULL REFERENCES staff (job_no) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('pin', 'card', 'badge')),
    secret_hash  text NOT NULL,
    changed_at   timestamptz NOT NULL,
    PRIMARY KEY (job_no, kind)
);

-- Every LOGIN and LOGOUT on a device, accepted or refused, with the reason of a refusal.
CREATE TABLE device_sign_ins (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL,
    counter_number  integer NOT NULL,
    device          text NOT NULL,
    at              timestamptz NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('login', 'logout')),
    method          text,
    job_no          text,
    outcome         text NOT NULL CHECK (outcome IN ('accepted', 'refused')),
    reason          text
);
CREATE INDEX device_sign_ins_hall_at ON device_sign_ins (hall_id, at);

-- Electronic supervision (电子监察): one row per alarm; cleared_at is set when the condition
-- ends. At most one open alarm per (hall, kind, counter).
CREATE TABLE supervision_alarms (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL,
    kind            text NOT NULL,
    counter_number  integer NOT NULL,
    clerk           text,
    ticket_id       bigint,
    raised_at       timestamptz NOT NULL,
    cleared_at      timestamptz,
    detail          text NOT NULL,
    points          real NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX supervision_alarms_one_open
    ON supervision_alarms (hall_id, kind, counter_number) WHERE cleared_at IS NULL;
CREATE INDEX supervision_alarms_hall_raised ON supervision_alarms (hall_id, raised_at);
