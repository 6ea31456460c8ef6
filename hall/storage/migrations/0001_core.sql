-- Core schema: halls, services, counters, numbering, tickets and the append-only event log.
-- The invariants live here: unique numbers per day, one active ticket per counter,
-- a gap-free per-hall event sequence, events never updated or deleted.

CREATE TABLE config_snapshots (
    id          bigserial PRIMARY KEY,
    loaded_at   timestamptz NOT NULL DEFAULT now(),
    sha256      text NOT NULL,
    body        jsonb NOT NULL
);

CREATE TABLE halls (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    level         text NOT NULL,
    parent_id     text REFERENCES halls (id),
    tz            text NOT NULL,
    day_boundary  time NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    -- Last event seq handed out for this hall; updated only by the commit step of a use case.
    last_seq      bigint NOT NULL DEFAULT 0
);

CREATE TABLE services (
    hall_id       text NOT NULL REFERENCES halls (id),
    code          text NOT NULL,
    name          text NOT NULL,
    prefix        text NOT NULL,
    number_group  text NOT NULL,
    active        boolean NOT NULL DEFAULT true,
    PRIMARY KEY (hall_id, code)
);

CREATE TYPE counter_state AS ENUM ('closed', 'idle', 'calling', 'serving', 'paused');

CREATE TABLE counters (
    hall_id                text NOT NULL REFERENCES halls (id),
    number                 integer NOT NULL,
    name                   text NOT NULL,
    kind                   text NOT NULL,
    active                 boolean NOT NULL DEFAULT true,
    state                  counter_state NOT NULL DEFAULT 'closed',
    state_since            timestamptz NOT NULL DEFAULT now(),
    pause_reason           text,
    clerk                  text,
    normal_since_priority  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (hall_id, number),
    CHECK ((state = 'paused') = (pause_reason IS NOT NULL))
);

CREATE TABLE staff (
    job_no    text PRIMARY KEY,
    name      text NOT NULL,
    roles     text[] NOT NULL,
    halls     text[] NOT NULL,
    counters  integer[] NOT NULL,
    active    boolean NOT NULL DEFAULT true
);

-- One row per hall x number group x business day; its row lock serialises numbering and its
-- update commits or rolls back with the ticket insert, so numbers stay contiguous.
CREATE TABLE number_counters (
    hall_id       text NOT NULL REFERENCES halls (id),
    number_group  text NOT NULL,
    business_day  date NOT NULL,
    last_value    integer NOT NULL,
    issued        integer NOT NULL,
    PRIMARY KEY (hall_id, number_group, business_day)
);

CREATE TYPE ticket_state AS ENUM (
    'waiting', 'called', 'serving', 'done', 'no_show', 'cancelled', 'parked'
);

CREATE TABLE tickets (
    id                bigserial PRIMARY KEY,
    hall_id           text NOT NULL REFERENCES halls (id),
    service_code      text NOT NULL,
    number_group      text NOT NULL,
    business_day      date NOT NULL,
    seq               integer NOT NULL,
    display_number    text NOT NULL,
    token             text NOT NULL UNIQUE,
    purpose           text NOT NULL,
    priority_class    text,
    appointment_start timestamptz,
    appointment_end   timestamptz,
    state             ticket_state NOT NULL DEFAULT 'waiting',
    issued_at         timestamptz NOT NULL,
    queue_key         timestamptz NOT NULL,
    counter_number    integer,
    target_counter    integer,
    recall_count      integer NOT NULL DEFAULT 0,
    first_called_at   timestamptz,
    called_at         timestamptz,
    serve_started_at  timestamptz,
    finished_at       timestamptz,
    parked_by         integer,
    kiosk             text,
    idempotency_key   text,
    idempotency_hash  text,
    FOREIGN KEY (hall_id, service_code) REFERENCES services (hall_id, code),
    UNIQUE (hall_id, number_group, business_day, seq),
    UNIQUE (hall_id, idempotency_key),
    CHECK ((state IN ('called', 'serving')) = (counter_number IS NOT NULL)),
    CHECK (idempotency_key IS NULL OR idempotency_hash IS NOT NULL)
);

-- At most one active ticket per counter, whatever the application does.
CREATE UNIQUE INDEX tickets_one_active_per_counter
    ON tickets (hall_id, counter_number) WHERE state IN ('called', 'serving');

CREATE INDEX tickets_waiting ON tickets (hall_id, service_code, queue_key)
    WHERE state = 'waiting';
CREATE INDEX tickets_day ON tickets (hall_id, business_day);
CREATE INDEX tickets_finished ON tickets (hall_id, service_code, finished_at DESC)
    WHERE state = 'done';

CREATE TABLE events (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL REFERENCES halls (id),
    seq             bigint NOT NULL,
    type            text NOT NULL,
    at              timestamptz NOT NULL,
    actor           text NOT NULL,
    ticket_id       bigint REFERENCES tickets (id),
    counter_number  integer,
    details         jsonb NOT NULL DEFAULT '{}',
    UNIQUE (hall_id, seq)
);
CREATE INDEX events_ticket ON events (ticket_id, id) WHERE ticket_id IS NOT NULL;
CREATE INDEX events_hall_at ON events (hall_id, at);

CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
