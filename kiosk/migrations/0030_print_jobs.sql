-- kiosk: ticket print jobs (migration range 0030-0039 belongs to the kiosk feature).
--
-- A kiosk ticket and its print job are written by the same statement: the AFTER INSERT
-- trigger below adds the job when the ticket's kiosk has a printer (kiosk_printers, synced
-- from the config at start-up), so there is never a ticket without its job nor a job without
-- its ticket, and a crash after the commit leaves a queued job that the next start prints.

CREATE TABLE kiosk_printers (
    hall_id  text NOT NULL REFERENCES halls (id),
    kiosk    text NOT NULL,
    printer  text NOT NULL,
    PRIMARY KEY (hall_id, kiosk)
);

CREATE TABLE kiosk_print_jobs (
    id            bigserial PRIMARY KEY,
    ticket_id     bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    hall_id       text NOT NULL REFERENCES halls (id),
    kiosk         text NOT NULL,
    -- 'ticket': printed at issue; 'reprint': a staff 补打
    kind          text NOT NULL DEFAULT 'ticket' CHECK (kind IN ('ticket', 'reprint')),
    state         text NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'printing', 'printed', 'held', 'cancelled')),
    -- why it is held or was cancelled: paper_out, cover_open, no_answer, offline, error, …
    reason        text,
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    printed_at    timestamptz,
    requested_by  text,
    CHECK ((state = 'printed') = (printed_at IS NOT NULL))
);
CREATE UNIQUE INDEX kiosk_print_jobs_one_per_ticket
    ON kiosk_print_jobs (ticket_id) WHERE kind = 'ticket';
CREATE INDEX kiosk_print_jobs_open
    ON kiosk_print_jobs (hall_id, kiosk, id) WHERE state IN ('queued', 'printing', 'held');

CREATE FUNCTION kiosk_print_job_for_ticket() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.kiosk IS NOT NULL AND EXISTS (
        SELECT 1 FROM kiosk_printers p WHERE p.hall_id = NEW.hall_id AND p.kiosk = NEW.kiosk
    ) THEN
        INSERT INTO kiosk_print_jobs (ticket_id, hall_id, kiosk, created_at, updated_at)
        VALUES (NEW.id, NEW.hall_id, NEW.kiosk, NEW.issued_at, NEW.issued_at);
        PERFORM pg_notify('kiosk_print', json_build_object(
            'hall', NEW.hall_id, 'kiosk', NEW.kiosk)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tickets_kiosk_print_job AFTER INSERT ON tickets
    FOR EACH ROW EXECUTE FUNCTION kiosk_print_job_for_ticket();

-- What each printer said last (DLE EOT), and its append-only alarm log for the manager.
CREATE TABLE kiosk_printer_status (
    hall_id     text NOT NULL REFERENCES halls (id),
    printer     text NOT NULL,
    kiosk       text NOT NULL,
    state       text NOT NULL DEFAULT 'unknown' CHECK (state IN (
                    'unknown', 'ok', 'near_end', 'paper_out', 'cover_open', 'error',
                    'offline', 'no_answer')),
    since       timestamptz NOT NULL,
    checked_at  timestamptz,
    PRIMARY KEY (hall_id, printer)
);

CREATE TABLE kiosk_printer_alarms (
    id       bigserial PRIMARY KEY,
    hall_id  text NOT NULL REFERENCES halls (id),
    printer  text NOT NULL,
    kiosk    text NOT NULL,
    -- the state the printer entered: a problem, near_end (a warning) or ok (recovered)
    kind     text NOT NULL,
    at       timestamptz NOT NULL
);
CREATE INDEX kiosk_printer_alarms_hall ON kiosk_printer_alarms (hall_id, id DESC);
CREATE TRIGGER kiosk_printer_alarms_append_only BEFORE UPDATE OR DELETE ON kiosk_printer_alarms
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
