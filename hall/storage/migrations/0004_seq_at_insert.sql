-- Event seqs are assigned when the event is inserted, under the hall row lock that the same
-- UPDATE takes and that lasts until COMMIT, so commit order still equals seq order.
--
-- Migration 0002 deferred this to COMMIT because use cases then held a transaction open
-- across several round trips. Every hot write is now one autocommitted statement (issue in
-- 0001's numbering statement, counter actions since 0003), so the lock is held only while
-- PostgreSQL runs that statement; and the deferred trigger cost a second write of every
-- event row (UPDATE events SET seq, with its index entries), which bench/core.py measured as
-- the largest share of the database's time after the action statements themselves.

DROP TRIGGER events_assign_seq ON events;

CREATE OR REPLACE FUNCTION events_assign_seq() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE halls SET last_seq = last_seq + 1 WHERE id = NEW.hall_id
        RETURNING last_seq INTO NEW.seq;
    IF NEW.seq IS NULL THEN
        RAISE EXCEPTION 'unknown hall %', NEW.hall_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    -- Listeners read the events table after the notification, which PostgreSQL delivers at
    -- COMMIT; identical payloads of one transaction are delivered once.
    PERFORM pg_notify('hall_events', json_build_object('hall', NEW.hall_id)::text);
    RETURN NEW;
END $$;

CREATE TRIGGER events_assign_seq BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_assign_seq();

-- Every event has its seq from the moment it exists, and nothing may change it afterwards.
ALTER TABLE events ALTER COLUMN seq SET NOT NULL;

CREATE OR REPLACE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$;
