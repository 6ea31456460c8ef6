-- Fewer WAL records per write (issue 9, CPU per operation; counted with
-- `bench/pg_per_op.py --wal`, which reads each phase's WAL with pg_waldump).

-- 1. The append-only check of events fires AFTER the update. A BEFORE UPDATE row trigger
-- makes PostgreSQL lock the row (a heap LOCK record, the page dirtied) before it even looks
-- at the trigger's WHEN clause, and the sequencer updates every event once: one lock record
-- per event, about one per operation. An AFTER row trigger's WHEN is evaluated on the old
-- and new row as the update is made, without a lock, and raising in it still aborts the
-- statement: every update other than the sequencer's numbering is refused as before.
DROP TRIGGER events_append_only ON events;
CREATE TRIGGER events_append_only AFTER UPDATE ON events
    FOR EACH ROW
    WHEN (NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL
               AND (NEW.id, NEW.hall_id, NEW.type, NEW.at, NEW.actor, NEW.ticket_id,
                    NEW.counter_number, NEW.details)
                   IS NOT DISTINCT FROM
                   (OLD.id, OLD.hall_id, OLD.type, OLD.at, OLD.actor, OLD.ticket_id,
                    OLD.counter_number, OLD.details)))
    EXECUTE FUNCTION forbid_change();

-- 2. A hall's seqs are unique among numbered events only. Every event is inserted with seq
-- NULL (migration 0006) and the unique constraint's index took an entry for that NULL too,
-- which no reader can use (NULLs never conflict, and every read by seq is `seq > $n` or
-- `seq = $n`). The partial index gets its entry when the sequencer numbers the event.
CREATE UNIQUE INDEX events_seq ON events (hall_id, seq) WHERE seq IS NOT NULL;
ALTER TABLE events DROP CONSTRAINT events_hall_id_seq_key;

-- 3. The tallies are updated in place, and inserted only when their row does not exist yet.
-- INSERT … ON CONFLICT DO UPDATE locks the existing row (a heap LOCK record) before it
-- updates it; a plain UPDATE does not. Issuing a ticket wrote two such upserts (the service
-- day, the waiting tally), calling one. The INSERT … ON CONFLICT stays for a row's first
-- write, where two writers may race to create it.
CREATE OR REPLACE FUNCTION tickets_tally() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    was_waiting boolean := TG_OP = 'UPDATE' AND OLD.state = 'waiting';
    is_waiting  boolean := NEW.state = 'waiting';
    v_slot      integer;
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE service_days SET issued = issued + 1
        WHERE hall_id = NEW.hall_id AND service_code = NEW.service_code
          AND business_day = NEW.business_day;
        IF NOT FOUND THEN
            INSERT INTO service_days AS d (hall_id, service_code, business_day, issued)
            VALUES (NEW.hall_id, NEW.service_code, NEW.business_day, 1)
            ON CONFLICT (hall_id, service_code, business_day)
            DO UPDATE SET issued = d.issued + 1;
        END IF;
    END IF;
    IF was_waiting AND is_waiting AND OLD.service_code = NEW.service_code THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        v_slot := coalesce(NEW.counter_number, OLD.counter_number, NEW.target_counter,
                           NEW.parked_by, 0);
    ELSE
        v_slot := 0;
    END IF;
    IF was_waiting THEN
        UPDATE queue_tallies SET waiting = waiting - 1
        WHERE hall_id = OLD.hall_id AND service_code = OLD.service_code AND slot = v_slot;
        IF NOT FOUND THEN
            INSERT INTO queue_tallies AS q (hall_id, service_code, slot, waiting)
            VALUES (OLD.hall_id, OLD.service_code, v_slot, -1)
            ON CONFLICT (hall_id, service_code, slot) DO UPDATE SET waiting = q.waiting - 1;
        END IF;
    END IF;
    IF is_waiting THEN
        UPDATE queue_tallies SET waiting = waiting + 1
        WHERE hall_id = NEW.hall_id AND service_code = NEW.service_code AND slot = v_slot;
        IF NOT FOUND THEN
            INSERT INTO queue_tallies AS q (hall_id, service_code, slot, waiting)
            VALUES (NEW.hall_id, NEW.service_code, v_slot, 1)
            ON CONFLICT (hall_id, service_code, slot) DO UPDATE SET waiting = q.waiting + 1;
        END IF;
    END IF;
    RETURN NULL;
END $$;
