-- One row lock fewer per issued ticket (issue 9, PostgreSQL's CPU per operation; counted
-- with `bench/pg_per_op.py --wal`).
--
-- A ticket's service is checked without locking the service's row. The foreign key
-- tickets (hall_id, service_code) -> services locked the service's row FOR KEY SHARE at every
-- issue: a heap LOCK record in the WAL and a dirtied page per ticket, on the few rows every
-- kiosk of the hall issues against (and a MultiXact whenever two issues of a service
-- overlap). The lock only guarded against the service being deleted or renamed meanwhile,
-- which the application never does (a service leaves the configuration by being marked
-- inactive). As migration 0101 did for events:
--   - tickets_tally (which runs at every ticket insert anyway) reads the service, without a
--     lock, when a ticket's service is first counted for its day (the service-day row does
--     not exist yet) and when a ticket moves to another service; a service-day row exists
--     only if such a read found its service, and the service cannot go while it exists;
--   - deleting a service, or changing its key, is refused while tickets or service-day rows
--     refer to it, after LOCK TABLE tickets IN SHARE MODE has waited for every ticket write
--     in flight (and kept new ones out until the delete's transaction ends).
ALTER TABLE tickets DROP CONSTRAINT tickets_hall_id_service_code_fkey;

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
            PERFORM tickets_service_exists(NEW.hall_id, NEW.service_code);
            INSERT INTO service_days AS d (hall_id, service_code, business_day, issued)
            VALUES (NEW.hall_id, NEW.service_code, NEW.business_day, 1)
            ON CONFLICT (hall_id, service_code, business_day)
            DO UPDATE SET issued = d.issued + 1;
        END IF;
    ELSIF (NEW.hall_id, NEW.service_code) IS DISTINCT FROM (OLD.hall_id, OLD.service_code) THEN
        PERFORM tickets_service_exists(NEW.hall_id, NEW.service_code);
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

CREATE FUNCTION tickets_service_exists(p_hall text, p_service text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM FROM services WHERE hall_id = p_hall AND code = p_service;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'ticket of unknown service % in hall %', p_service, p_hall
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END $$;

-- The trigger also fires on a ticket's hall: the check above runs when either moves.
DROP TRIGGER tickets_tally ON tickets;
CREATE TRIGGER tickets_tally AFTER INSERT OR UPDATE OF state, service_code, hall_id ON tickets
    FOR EACH ROW EXECUTE FUNCTION tickets_tally();

CREATE FUNCTION services_referenced() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (NEW.hall_id, NEW.code) IS NOT DISTINCT FROM (OLD.hall_id, OLD.code)
    THEN
        RETURN NEW;
    END IF;
    LOCK TABLE tickets IN SHARE MODE;
    PERFORM FROM tickets WHERE hall_id = OLD.hall_id AND service_code = OLD.code LIMIT 1;
    IF NOT FOUND THEN
        PERFORM FROM service_days WHERE hall_id = OLD.hall_id AND service_code = OLD.code
        LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'service % of hall % is referenced by tickets', OLD.code, OLD.hall_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END;
END $$;

CREATE TRIGGER services_referenced BEFORE DELETE OR UPDATE OF hall_id, code ON services
    FOR EACH ROW EXECUTE FUNCTION services_referenced();
