-- An event's hall and ticket are checked without locking their rows (issue 9, CPU per
-- operation).
--
-- A foreign key check locks the row it finds (FOR KEY SHARE) until the transaction ends, and
-- a row lock is a write: the row's page is dirtied and the lock WAL-logged. Every events
-- insert locked its hall's row, which all the hall's writers and its sequencer (UPDATE halls
-- SET last_seq) hold at the same time, so nearly every write also created a MultiXact (the
-- set of the row's lockers, kept in pg_multixact): about one per operation in
-- bench/cpu_per_op.py, and 6 of the 41 WAL records of an issued ticket.
--
-- The lock only guards against the referenced row being deleted meanwhile. Halls and tickets
-- are never deleted by the application; the triggers below refuse deleting one that events
-- refer to, and take a lock that waits for every events insert in flight first, so an
-- insert and a delete cannot cross. The insert's check itself is a plain read.
ALTER TABLE events DROP CONSTRAINT events_hall_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_ticket_id_fkey;
-- Redundant: (hall_id, service_code) references services, whose hall_id references halls.
ALTER TABLE tickets DROP CONSTRAINT tickets_hall_id_fkey;

CREATE OR REPLACE FUNCTION events_pending() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.seq := NULL;  -- only the sequencer numbers events
    -- What the foreign keys checked, without locking the rows (see above).
    PERFORM FROM halls WHERE id = NEW.hall_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event of unknown hall %', NEW.hall_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    IF NEW.ticket_id IS NOT NULL THEN
        PERFORM FROM tickets WHERE id = NEW.ticket_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'event of unknown ticket %', NEW.ticket_id
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    IF current_setting('hall.commit_notice', true) IS DISTINCT FROM 'in_process' THEN
        -- Delivered at COMMIT; identical payloads of one transaction are delivered once.
        PERFORM pg_notify('hall_events', json_build_object('hall', NEW.hall_id)::text);
    END IF;
    RETURN NEW;
END $$;

-- Deleting a hall or a ticket that events refer to is refused. The SHARE lock waits for
-- every transaction that inserted events to end and keeps new inserts out until this one
-- ends, so the check sees every event that will ever refer to the row, and an insert that
-- waited sees the row gone.
CREATE FUNCTION events_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE events IN SHARE MODE;
    IF TG_TABLE_NAME = 'halls' THEN
        PERFORM FROM events WHERE hall_id = OLD.id LIMIT 1;
    ELSE
        PERFORM FROM events WHERE ticket_id = OLD.id LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION '% % is referenced by events', TG_TABLE_NAME, OLD.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN OLD;
END $$;

CREATE TRIGGER halls_events_referenced BEFORE DELETE ON halls
    FOR EACH ROW EXECUTE FUNCTION events_referenced();
CREATE TRIGGER tickets_events_referenced BEFORE DELETE ON tickets
    FOR EACH ROW EXECUTE FUNCTION events_referenced();
