-- Evaluator slice: cases (办件), pad rating sessions, ratings bound to cases, 差评 follow-up
-- tasks, the slice's alarms and the upstream 好差评 outbox. The kernel's ratings table (0020)
-- is extended in place: its rows stay, its one-rating-per-ticket rule becomes one on-site
-- rating per visit plus one rating per case.

CREATE TABLE cases (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL REFERENCES halls (id),
    number          text NOT NULL CHECK (length(number) BETWEEN 1 AND 64),
    source          text NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'upstream')),
    matter_code     text,
    matter_impl_code text,
    matter_name     text NOT NULL CHECK (length(matter_name) BETWEEN 1 AND 100),
    case_type       text NOT NULL CHECK (case_type IN ('immediate', 'promised', 'joint',
                                                       'reported')),
    promised_days   integer NOT NULL CHECK (promised_days BETWEEN 0 AND 3650),
    accepted_on     date NOT NULL,
    due_on          date NOT NULL CHECK (due_on >= accepted_on),
    status          text NOT NULL DEFAULT 'accepted'
        CHECK (status IN ('accepted', 'reviewing', 'completed', 'delivered', 'collected',
                          'returned', 'rejected')),
    ticket_id       bigint REFERENCES tickets (id),
    ticket_number   text,
    counter_number  integer,
    clerk           text,
    service_code    text,
    applicant_name  text CHECK (length(applicant_name) <= 40),
    applicant_phone text CHECK (length(applicant_phone) <= 20),
    applicant_key   text,          -- HMAC of the normalised ID number or phone (find by citizen)
    rating_token    text NOT NULL UNIQUE,  -- phone link / QR for a rating later (一事一评)
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    UNIQUE (hall_id, number),
    UNIQUE (id, hall_id)
);
CREATE INDEX cases_ticket ON cases (ticket_id) WHERE ticket_id IS NOT NULL;
CREATE INDEX cases_applicant ON cases (hall_id, applicant_key) WHERE applicant_key IS NOT NULL;

-- Status history of a case, append-only; each row is also one upstream record.
CREATE TABLE case_events (
    id          bigserial PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    hall_id     text NOT NULL REFERENCES halls (id),
    from_status text,
    to_status   text NOT NULL,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    note        text CHECK (length(note) <= 200)
);
CREATE INDEX case_events_case ON case_events (case_id, id);
CREATE TRIGGER case_events_append_only BEFORE UPDATE OR DELETE ON case_events
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- HB1.md §10.3: a pad session is a random non-zero u32 chosen by the host and bound to
-- (ticket, window, clerk); the case is bound when the clerk finishes with one.
CREATE TABLE pad_sessions (
    id              bigint PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
    n               bigserial NOT NULL UNIQUE,  -- opening order (ids are random)
    hall_id         text NOT NULL REFERENCES halls (id),
    counter_number  integer NOT NULL,
    ticket_id       bigint NOT NULL REFERENCES tickets (id),
    clerk           text,
    opened_at       timestamptz NOT NULL,
    UNIQUE (hall_id, counter_number, ticket_id)
);
CREATE INDEX pad_sessions_counter ON pad_sessions (hall_id, counter_number, n DESC);

CREATE FUNCTION evaluator_random_session() RETURNS bigint LANGUAGE sql VOLATILE AS $$
    SELECT ('x' || substr(replace(gen_random_uuid()::text, '-', ''), 1, 8))::bit(32)::bigint
$$;

-- A call at a counter opens the pad session of that (counter, ticket), once.
CREATE FUNCTION evaluator_open_pad_session() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sid bigint;
BEGIN
    IF NEW.counter_number IS NULL OR NEW.ticket_id IS NULL THEN
        RETURN NULL;
    END IF;
    LOOP
        sid := evaluator_random_session();
        CONTINUE WHEN sid = 0;
        BEGIN
            INSERT INTO pad_sessions (id, hall_id, counter_number, ticket_id, clerk, opened_at)
            SELECT sid, NEW.hall_id, NEW.counter_number, NEW.ticket_id, c.clerk, NEW.at
            FROM (SELECT 1) one
            LEFT JOIN counters c ON c.hall_id = NEW.hall_id AND c.number = NEW.counter_number
            ON CONFLICT (hall_id, counter_number, ticket_id) DO NOTHING;
            RETURN NULL;
        EXCEPTION WHEN unique_violation THEN
            -- the random id was taken: draw again
        END;
    END LOOP;
END $$;
CREATE TRIGGER events_open_pad_session AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.type = 'ticket.called')
    EXECUTE FUNCTION evaluator_open_pad_session();

-- Ratings: bound to a pad session and/or a case; reasons as codes of the configured list.
ALTER TABLE ratings DROP CONSTRAINT ratings_ticket_id_key;
ALTER TABLE ratings ALTER COLUMN ticket_id DROP NOT NULL;
ALTER TABLE ratings ALTER COLUMN counter_number DROP NOT NULL;
ALTER TABLE ratings
    ADD COLUMN session_id bigint UNIQUE REFERENCES pad_sessions (id),
    ADD COLUMN case_id bigint REFERENCES cases (id),
    ADD COLUMN service_code text,
    ADD COLUMN reason_codes text[] NOT NULL DEFAULT '{}',
    ADD COLUMN comment text CHECK (length(comment) <= 200),
    ADD CONSTRAINT ratings_channel CHECK (channel IN ('pad', 'web_pad', 'phone'));
-- 一次一评: one on-site rating per visit (ticket); 一事一评: one rating per case.
CREATE UNIQUE INDEX ratings_one_per_visit ON ratings (ticket_id)
    WHERE channel IN ('pad', 'web_pad') AND ticket_id IS NOT NULL;
CREATE UNIQUE INDEX ratings_one_per_case ON ratings (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX ratings_hall_time ON ratings (hall_id, rated_at DESC);

-- 差评 follow-up (one task per bad rating).
CREATE TABLE bad_rating_tasks (
    id                  bigserial PRIMARY KEY,
    hall_id             text NOT NULL REFERENCES halls (id),
    rating_id           bigint NOT NULL UNIQUE REFERENCES ratings (id),
    case_id             bigint REFERENCES cases (id),
    ticket_id           bigint REFERENCES tickets (id),
    counter_number      integer,
    clerk               text,
    owner               text NOT NULL,
    opened_at           timestamptz NOT NULL,
    due_on              date NOT NULL,
    status              text NOT NULL DEFAULT 'open'
        CHECK (status IN ('open', 'visited', 'rectified', 'closed')),
    return_visit_at     timestamptz,
    return_visit_result text CHECK (return_visit_result IN ('satisfied', 'basic',
                                                            'unsatisfied')),
    return_visit_note   text CHECK (length(return_visit_note) <= 500),
    rectification       text CHECK (length(rectification) <= 1000),
    rectified_at        timestamptz,
    appeal_reason       text CHECK (length(appeal_reason) <= 500),
    appealed_at         timestamptz,
    appeal_outcome      text CHECK (appeal_outcome IN ('upheld', 'rejected')),
    appeal_decided_at   timestamptz,
    appeal_decided_by   text,
    closed_at           timestamptz,
    CHECK ((appeal_outcome IS NULL) OR (appealed_at IS NOT NULL))
);
CREATE INDEX bad_rating_tasks_open ON bad_rating_tasks (hall_id, due_on)
    WHERE status <> 'closed';

-- The slice's alarms (overdue 差评, upstream dead letters): one per (kind, ref).
CREATE TABLE evaluator_alarms (
    id          bigserial PRIMARY KEY,
    hall_id     text NOT NULL REFERENCES halls (id),
    kind        text NOT NULL CHECK (kind IN ('bad_rating_overdue', 'upstream_dead_letter')),
    ref_id      bigint NOT NULL,
    message     text NOT NULL,
    raised_at   timestamptz NOT NULL,
    cleared_at  timestamptz,
    UNIQUE (kind, ref_id)
);

-- Upstream 好差评 outbox: one row per record, enqueued in the writing transaction.
CREATE TABLE upstream_outbox (
    id              bigserial PRIMARY KEY,
    hall_id         text NOT NULL REFERENCES halls (id),
    key             text NOT NULL UNIQUE,
    kind            text NOT NULL CHECK (kind IN ('rating', 'case_status')),
    ref_id          bigint NOT NULL,
    state           text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'dead')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    created_at      timestamptz NOT NULL,
    delivered_at    timestamptz
);
CREATE INDEX upstream_outbox_due ON upstream_outbox (next_attempt_at) WHERE state = 'pending';

CREATE FUNCTION evaluator_enqueue_rating() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO upstream_outbox (hall_id, key, kind, ref_id, next_attempt_at, created_at)
    VALUES (NEW.hall_id, NEW.hall_id || ':rating:' || NEW.id, 'rating', NEW.id, now(), now());
    PERFORM pg_notify('evaluator_outbox', NEW.hall_id);
    RETURN NULL;
END $$;
CREATE TRIGGER ratings_enqueue_upstream AFTER INSERT ON ratings
    FOR EACH ROW EXECUTE FUNCTION evaluator_enqueue_rating();

CREATE FUNCTION evaluator_enqueue_case_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO upstream_outbox (hall_id, key, kind, ref_id, next_attempt_at, created_at)
    VALUES (NEW.hall_id, NEW.hall_id || ':case:' || NEW.case_id || ':' || NEW.id,
            'case_status', NEW.id, now(), now());
    PERFORM pg_notify('evaluator_outbox', NEW.hall_id);
    RETURN NULL;
END $$;
CREATE TRIGGER case_events_enqueue_upstream AFTER INSERT ON case_events
    FOR EACH ROW EXECUTE FUNCTION evaluator_enqueue_case_event();
