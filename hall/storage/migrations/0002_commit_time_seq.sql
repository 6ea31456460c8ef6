-- Event seqs are assigned at COMMIT by a deferred trigger. The hall row lock that keeps each
-- hall's seq gap-free and in commit order is then held only while the transaction commits,
-- not across round trips to the application (bench/core.py measured the earlier design
-- serialising every operation of a hall on that lock).

ALTER TABLE events ALTER COLUMN seq DROP NOT NULL;

CREATE OR REPLACE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one permitted update: the commit-time sequencer (itself a trigger, hence depth > 1)
    -- fills in events.seq exactly once.
    -- (Nested IFs: PL/pgSQL does not short-circuit AND, and other tables have no seq.)
    IF TG_TABLE_NAME = 'events' AND TG_OP = 'UPDATE' AND pg_trigger_depth() > 1 THEN
        IF OLD.seq IS NULL AND NEW.seq IS NOT NULL
           AND (OLD.hall_id, OLD.type, OLD.at, OLD.actor, OLD.ticket_id, OLD.counter_number,
                OLD.details)
               IS NOT DISTINCT FROM
               (NEW.hall_id, NEW.type, NEW.at, NEW.actor, NEW.ticket_id, NEW.counter_number,
                NEW.details) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE FUNCTION events_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    next_seq bigint;
BEGIN
    IF NEW.seq IS NOT NULL THEN
        RETURN NULL;
    END IF;
    UPDATE halls SET last_seq = last_seq + 1 WHERE id = NEW.hall_id
        RETURNING last_seq INTO next_seq;
    UPDATE events SET seq = next_seq WHERE id = NEW.id;
    -- Listeners read the events table after the notification; identical payloads of one
    -- transaction are delivered once.
    PERFORM pg_notify('hall_events', json_build_object('hall', NEW.hall_id)::text);
    RETURN NULL;
END $$;

-- Deferred row triggers fire at COMMIT in the order the rows were inserted.
CREATE CONSTRAINT TRIGGER events_assign_seq AFTER INSERT ON events
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION events_assign_seq();
